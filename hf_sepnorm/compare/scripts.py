"""Running the training scripts (`hf_sepnorm.scripts`, which `examples/run_*.py` and `hf-sepnorm glue` etc. run) from
`hf-sepnorm compare`: the comparison trains exactly what a user trains, through each script's `main(args)`, instead
of a pipeline of its own."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from .recipes import Schedule


def run_script(name: str, args: list) -> dict[str, float]:
    """`hf_sepnorm.scripts.<name>`'s `main(args)`: its metrics (the script also writes them to `--output_dir`)."""
    return importlib.import_module(f"hf_sepnorm.scripts.{name}").main([str(arg) for arg in args])


def training_flags(output_dir: Path, *, steps: int, learning_rate: float, batch_size: int, seed: int,
                   schedule: Schedule = Schedule()) -> list[str]:  # fmt: skip
    """The `TrainingArguments` of a run of the comparison: AdamW with `schedule` (by default 5 % warm-up then cosine
    decay), no checkpoints, evaluation after training. The device is the Trainer's choice (a GPU when there is
    one)."""
    warmup = round(steps * schedule.warmup_fraction)
    return [
        "--output_dir", output_dir, "--do_train", "--do_eval", "--max_steps", steps, "--learning_rate", learning_rate,
        "--per_device_train_batch_size", batch_size, "--per_device_eval_batch_size", batch_size,
        "--weight_decay", schedule.weight_decay, "--warmup_steps", max(1, warmup) if schedule.warmup_fraction else 0,
        "--lr_scheduler_type", schedule.lr_scheduler_type, "--logging_steps", max(1, steps // 10),
        "--save_strategy", "no", "--report_to", "none", "--seed", seed, "--disable_tqdm", "true",
        "--overwrite_output_dir", "true",  # a run of an interrupted comparison starts over in its own folder
    ]  # fmt: skip


def write_run_log(output_dir: Path, metrics: dict[str, float]) -> Path:
    """`log_history.json` in `output_dir`: the Trainer's log (training losses, learning rates) followed by the
    metrics `main` returned, evaluation included, so that one file holds the whole run."""
    state_file = Path(output_dir) / "trainer_state.json"
    history = json.loads(state_file.read_text()).get("log_history", []) if state_file.is_file() else []
    logged_keys = {key for entry in history for key in entry}
    final = {key: value for key, value in metrics.items() if key not in logged_keys or key.startswith("eval_")}
    path = Path(output_dir) / "log_history.json"
    path.write_text(json.dumps([*history, {"final_metrics": final}], indent=1))
    return path
