#!/usr/bin/env python
"""The paper's text protocol from a start that can move: a small BERT pretrained here with ShareNorm masked LM (never
trained contrastively), then unsupervised SimCSE from it with `shared`, `batch-final` and `batch-all`, 5 paired seeds.

    nice -n 19 env OMP_NUM_THREADS=1 nohup python docs/results/simcse-mlm-start/run_experiment.py > mlm-start.log 2>&1 &

README.md (the plan) fixes the recipe, the step-count rule and the primary row before any run. The stages, in order,
each recorded as it finishes (a rerun skips what is recorded; `pretrained/` keeps the MLM checkpoint the later
stages start from, not committed: its sha256 is in runs/mlm/pretraining.json). Stage 1 outlasts a 3-hour session on
one core with the evaluations, so it saves a checkpoint every SAVE_STEPS steps in `pretraining-work/` (not committed)
and a rerun resumes from the last complete one (`hf-sepnorm mlm` resumes to the weights of an uninterrupted run):

1. runs/mlm/pretraining.json: masked-LM pretraining (`hf-sepnorm mlm`, ShareNorm), its learning curve and its eval
   loss against the unigram predictor's on the same held-out blocks;
2. runs/<arm>/untrained.json: each arm's start, step 0 (SepNorm inserted into the MLM checkpoint);
3. runs/pilot/shared-seed0.json: `shared`, seed 0, up to PILOT_MAX_STEPS, evaluated every EVAL_STEPS on the STS-B
   dev pairs; the step count S is the first evaluation whose mean of the last three dev Spearmans gains
   >= REQUIRED_GAIN over the start (`step_count`); none: the experiment stops, without a verdict;
4. runs/<arm>/seed<i>.json: every arm x seed, S steps, seed-major (paired seeds finish first).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[2]))

from experiment_runner import load_script, log_history, parse_options, shown, versions, work_through  # noqa: E402

ARMS = {
    "shared": ["--cls_norm", "shared"],
    "batch-final": ["--cls_norm", "batch", "--sepnorm_scope", "final"],
    "batch-all": ["--cls_norm", "batch", "--sepnorm_scope", "all"],
}
SEEDS = [0, 1, 2, 3, 4]
MLM_TEXT = ["text/wikitext2.valid.tokens", "text/wikitext2.test.tokens", "text/ptb.valid.txt", "text/ptb.test.txt",
            "text/war_and_peace.txt", "text/tinyshakespeare.txt"]  # fmt: skip
SIMCSE_TEXT = ["text/wikitext2.valid.tokens", "text/wikitext2.test.tokens"]
MLM_RECIPE = {  # a small BERT, ShareNorm, from scratch
    "config_overrides": "hidden_size=256,num_hidden_layers=4,num_attention_heads=4,intermediate_size=1024",
    "cls_norm": "shared",
    "vocab_size": 8000,
    "max_seq_length": 128,
    "validation_split_percentage": 5,
    "max_eval_samples": 256,  # held-out blocks: the learning curve and the unigram baseline
    "per_device_train_batch_size": 32,
    "max_steps": 3000,
    "learning_rate": 5e-4,
    "lr_scheduler_type": "linear",
    "warmup_steps": 0.06,
    "weight_decay": 0.01,
    "eval_strategy": "steps",
    "eval_steps": 250,
    "logging_steps": 50,
    "seed": 0,
}
SIMCSE_RECIPE = {  # every SimCSE setting but max_steps, the same for every arm and seed
    "per_device_train_batch_size": 32,
    "learning_rate": 1e-4,  # a small model from an MLM start: it has to move
    "lr_scheduler_type": "constant",
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "max_seq_length": 32,
    "temperature": 0.05,
    "min_words": 6,
    "drop_headings": "true",
    "recalibrate_cls_norm": "false",
    "standardization_samples": 1024,
    "eval_strategy": "steps",
    "logging_steps": 10,
}
EVAL_STEPS = 100
PILOT_MAX_STEPS = 2000
REQUIRED_GAIN = 5.0  # Spearman x 100 points over the start, `shared`, STS-B dev pairs (the pilot's)
PILOT_KEY = "eval_stsb_dev_spearman"
PRIMARY = "eval_stsb_train_spearman"  # the 5,749 STS-B train pairs, never seen in training nor in the pilot's rule
LAST = 3  # the primary: the mean of the last three evaluations (S - 200, S - 100, S)
PRETRAINED = HERE / "pretrained"
PRETRAINING_WORK = HERE / "pretraining-work"  # stage 1's output_dir and checkpoints, kept between sessions
SAVE_STEPS = 250


def mean_of_last(curve: list[dict], key: str, step: int) -> float | None:
    """The mean of `key` over the LAST evaluations ending at `step` (None when fewer were made)."""
    values = [entry[key] for entry in curve if key in entry and step - EVAL_STEPS * (LAST - 1) <= entry["step"] <= step]
    return statistics.mean(values) if len(values) == LAST else None


def step_count(pilot: dict, start: dict) -> int | None:
    """The rule fixed in the plan: the first evaluated step S whose mean of the last three dev Spearmans gains at
    least REQUIRED_GAIN over the start; None when no step up to PILOT_MAX_STEPS does."""
    for entry in pilot["curve"]:
        value = mean_of_last(pilot["curve"], PILOT_KEY, entry["step"])
        if value is not None and value - start["metrics"][PILOT_KEY] >= REQUIRED_GAIN:
            return entry["step"]
    return None


def flags(recipe: dict) -> list[str]:
    return [item for name, value in recipe.items() for item in (f"--{name}", str(value))]


def common(seed: int, output_dir: str) -> list[str]:
    return ["--output_dir", output_dir, "--seed", str(seed), "--save_strategy", "no", "--report_to", "none",
            "--disable_tqdm", "true"]  # fmt: skip


def simcse_data(data_dir: Path) -> list[str]:
    return ["--train_file", *(str(data_dir / name) for name in SIMCSE_TEXT), "--sts_dir", str(data_dir / "glue" / "STS-B")]


def sha256_of(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob("*.safetensors"))}


def pretrain(data_dir: Path, threads: int) -> dict:
    """Stage 1, with the unigram predictor's loss on the same held-out blocks."""
    from transformers import AutoTokenizer

    from hf_sepnorm.compare.tracks.scratch_text import unigram_mlm_loss
    from hf_sepnorm.data.text import cls_led_blocks, load_text_corpus
    from hf_sepnorm.training.checkpoints import last_complete_checkpoint

    script = load_script("run_mlm")
    recipe = {name: value for name, value in MLM_RECIPE.items() if name != "seed"}
    started = time.time()
    output_dir = str(PRETRAINING_WORK / "mlm")
    resumed = last_complete_checkpoint(output_dir) if os.path.isdir(output_dir) else None
    if resumed is None:
        shutil.rmtree(output_dir, ignore_errors=True)  # a start killed before its first checkpoint: start again
    text = [str(data_dir / name) for name in MLM_TEXT]
    arguments = ["--train_file", *text, *flags(recipe), "--output_dir", output_dir, "--seed", str(MLM_RECIPE["seed"]),
                 "--save_strategy", "steps", "--save_steps", str(SAVE_STEPS), "--save_total_limit", "2",
                 "--report_to", "none", "--disable_tqdm", "true", "--do_train", "--do_eval",
                 *(["--resume_from_checkpoint", str(resumed)] if resumed else [])]  # fmt: skip
    metrics = script.main(arguments)
    history = log_history(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    blocks = cls_led_blocks(load_text_corpus(text, [], MLM_RECIPE["validation_split_percentage"]), tokenizer,
                            MLM_RECIPE["max_seq_length"])  # fmt: skip
    unigram = unigram_mlm_loss(blocks["train"]["input_ids"],
                               blocks["validation"]["input_ids"][: MLM_RECIPE["max_eval_samples"]],
                               set(tokenizer.all_special_ids), len(tokenizer))  # fmt: skip
    shutil.rmtree(PRETRAINED, ignore_errors=True)
    shutil.copytree(output_dir, PRETRAINED, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    return {"stage": "mlm", "recipe": MLM_RECIPE, "metrics": metrics, "unigram_eval_loss": unigram,
            "log_history": history, "curve": [entry for entry in history if "eval_loss" in entry],
            "resumed_from": [Path(resumed).name] if resumed else [],
            "arguments": [argument.replace(output_dir, "<pretraining-work>") for argument in shown(arguments)],
            "weights_sha256": sha256_of(PRETRAINED), "threads": threads, "versions": versions(),
            "seconds": round(time.time() - started, 1)}  # fmt: skip


def simcse(arm: str, seed: int, steps: int | None, data_dir: Path, threads: int) -> dict:
    """Stage 2 (steps None: the untrained start, evaluated), 3 and 4 (SimCSE for `steps`, evaluated every
    EVAL_STEPS)."""
    from hf_sepnorm.training.controls import BATCHNORM_EPS  # what the standardized [CLS] adds to the variance

    script = load_script("run_simcse")
    started = time.time()
    record = {"arm": arm, "seed": seed, "steps": steps, "primary": PRIMARY, "recipe": SIMCSE_RECIPE,
              "pretrained_sha256": sha256_of(PRETRAINED), "threads": threads, "versions": versions(),
              "standardization_epsilon": BATCHNORM_EPS}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"mlm-start-simcse-{arm}-") as work:
        output_dir = os.path.join(work, "run")
        base = ["--model_name_or_path", str(PRETRAINED), *ARMS[arm], *simcse_data(data_dir), *common(seed, output_dir)]
        if steps is None:
            arguments = [*base, "--standardization_samples", str(SIMCSE_RECIPE["standardization_samples"]),
                         "--min_words", str(SIMCSE_RECIPE["min_words"]), "--do_eval"]  # fmt: skip
            record["metrics"] = script.main(arguments)
        else:
            arguments = [*base, *flags(SIMCSE_RECIPE), "--max_steps", str(steps), "--eval_steps", str(EVAL_STEPS),
                         "--do_train"]  # fmt: skip
            train_metrics = script.main(arguments)
            record["log_history"] = log_history(output_dir)
            record["curve"] = [entry for entry in record["log_history"] if PRIMARY in entry]
            record["metrics"] = {**train_metrics, **record["curve"][-1]}
            record["primary_value"] = mean_of_last(record["curve"], PRIMARY, steps)
        record["arguments"] = [argument.replace(str(PRETRAINED), "<pretrained>") for argument in shown(arguments)]
    record["seconds"] = round(time.time() - started, 1)
    return record


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], HERE / "runs", "text/ and glue/STS-B")
    data_dir, runs = Path(options.data_dir), Path(options.results_dir)
    summary = {"mlm": lambda r: f"eval loss {r['metrics']['eval_loss']:.3f} (unigram {r['unigram_eval_loss']:.3f})"}
    work_through([("mlm pretraining", runs / "mlm" / "pretraining.json")], lambda name: pretrain(data_dir, options.threads),
                 summary["mlm"])  # fmt: skip
    scored = lambda r: f"STS-B train {r['metrics'][PRIMARY]:.2f}, dev {r['metrics'][PILOT_KEY]:.2f}"  # noqa: E731
    work_through([(f"{arm} untrained", runs / arm / "untrained.json") for arm in ARMS],
                 lambda name: simcse(name.split()[0], 0, None, data_dir, options.threads), scored)  # fmt: skip
    work_through([("pilot shared seed0", runs / "pilot" / "shared-seed0.json")],
                 lambda name: simcse("shared", 0, PILOT_MAX_STEPS, data_dir, options.threads), scored)  # fmt: skip
    pilot, start = (json.loads(path.read_text()) for path in (runs / "pilot" / "shared-seed0.json",
                                                              runs / "shared" / "untrained.json"))  # fmt: skip
    steps = step_count(pilot, start)
    if steps is None:
        print(f"`shared` does not gain {REQUIRED_GAIN} dev points within {PILOT_MAX_STEPS} steps: no SimCSE runs "
              "(README.md: the experiment stops without a verdict)", flush=True)  # fmt: skip
        return
    print(f"step count S = {steps} (the pilot's rule)", flush=True)
    plan = [(f"{arm} seed{seed}", runs / arm / f"seed{seed}.json") for seed in SEEDS for arm in ARMS]
    work_through(plan, lambda name: simcse(name.split()[0], int(name.split()[1][4:]), steps, data_dir,
                                           options.threads), scored)  # fmt: skip


if __name__ == "__main__":
    main()
