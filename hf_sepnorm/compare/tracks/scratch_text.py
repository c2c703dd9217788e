"""The text track from scratch: masked-LM pretraining on text files (`hf-sepnorm mlm`), readouts of a GLUE task's
sentences, GLUE fine-tuning (`hf-sepnorm glue`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import AutoTokenizer, set_seed

from ...data.glue import glue_task_folder
from ...data.text import cls_led_blocks, load_text_corpus, train_wordpiece_tokenizer
from ...remote_code.configuration_sepnorm_bert import SepNormBertConfig
from ...remote_code.modeling_sepnorm_bert import SepNormBertModel
from ..readouts import Metric, SentenceReadouts, prefixed, readout_metrics
from ..recipes import Arm, TextRecipe
from ..scripts import run_script, training_flags, write_run_log
from .checkpoints import load_encoder
from .glue import (
    fine_tuning_flags,
    glue_convergence_checks,
    glue_finetune,
    glue_metrics,
    text_track_baselines,
)

TRIVIAL_MLM = "MLM loss, unigram distribution"  # the baseline the learning check reads


def unigram_mlm_loss(train_ids: list[list[int]], eval_ids: list[list[int]], special_ids: set[int], vocab_size: int) -> float:
    """The masked-LM cross-entropy of predicting every masked token from the training unigram distribution (add-one
    smoothing), in expectation over the masks: the mean of -log p(token) over the evaluation's non-special tokens
    (the collator masks only those)."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for ids in train_ids:
        np.add.at(counts, [token for token in ids if token not in special_ids], 1)
    log_probabilities = np.log(counts / counts.sum())
    tokens = [token for ids in eval_ids for token in ids if token not in special_ids]
    return float(-log_probabilities[tokens].mean())


class ScratchTextTrack:
    name = "text"
    published_folder = "mlm"  # the model `--push_to_hub` publishes: the masked LM, whose [CLS] the readouts measure
    plotted = "test [CLS] embeddings after MLM pretraining"

    def __init__(self, recipe: TextRecipe, text_files: list[str], glue_dir: str, work_dir: Path,
                 recalibrate: bool = True):  # fmt: skip
        self.recipe, self.text_files, self.glue_dir, self.recalibrate = recipe, text_files, glue_dir, recalibrate
        for task in recipe.glue_tasks:
            glue_task_folder(glue_dir, task)
        self.tokenizer_dir = work_dir / "tokenizer"
        if not (self.tokenizer_dir / "tokenizer.json").is_file():
            corpus = load_text_corpus(text_files)
            tokenizer = train_wordpiece_tokenizer(iter(corpus["train"]["text"]), vocab_size=recipe.vocab_size)
            tokenizer.save_pretrained(self.tokenizer_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_dir)
        self.sentences = SentenceReadouts(recipe.readout_task, glue_dir=glue_dir, train_rows=recipe.readout_train_rows,
                                          tokenizer=self.tokenizer, max_seq_length=recipe.max_seq_length,
                                          batch_size=recipe.batch_size)  # fmt: skip
        self.title = "Text: masked-LM from scratch, then GLUE"
        self.data = {"pretraining text": ", ".join(Path(f).name for f in text_files),
                     "pretraining blocks (max)": recipe.max_pretrain_blocks or "all",
                     f"{recipe.readout_task} readout rows (train / full dev)": f"{len(self.sentences.train_labels)} / {len(self.sentences.test_labels)}",
                     "GLUE training rows per task (max)": recipe.max_glue_train or "all"}  # fmt: skip
        self.metrics = [
            Metric("mlm_eval_loss", False, "MLM loss on held-out blocks", "pretraining"),
            *readout_metrics(label=f"{recipe.readout_task}: "),
            *glue_metrics(recipe.glue_tasks, reestimated=not recalibrate),
            *readout_metrics("random_init_", f"random-init [CLS], {recipe.readout_task}: "),
        ]
        self.gate = [("linear_probe_accuracy", "random_init_linear_probe_accuracy")]
        self.convergence_checks = glue_convergence_checks(recipe.glue_tasks)
        self.learning_check = {"metric": "mlm_eval_loss", "baseline": TRIVIAL_MLM, "learner": "the masked LM",
                               "trivial": "the unigram distribution"}  # fmt: skip

    def baselines(self) -> dict[str, tuple[float, str]]:
        baselines = text_track_baselines(self.sentences, self.recipe, self.glue_dir)
        baselines[TRIVIAL_MLM] = (self.unigram_loss(), "MLM cross-entropy of the training unigram distribution")
        return baselines

    def unigram_loss(self) -> float:
        """On the blocks the MLM script trains and evaluates on (its held-out split, the first `mlm_eval_blocks`)."""
        recipe = self.recipe
        blocks = cls_led_blocks(load_text_corpus(self.text_files), self.tokenizer, recipe.max_seq_length)
        train = blocks["train"]["input_ids"][: recipe.max_pretrain_blocks or len(blocks["train"])]
        evaluated = blocks["validation"]["input_ids"][: recipe.mlm_eval_blocks]
        return unigram_mlm_loss(train, evaluated, set(self.tokenizer.all_special_ids), len(self.tokenizer))

    def _read_out(self, model, seed: int):
        return self.sentences.read_out(model, seed=seed, recalibration_count=self.recipe.recalibration_batches,
                                       recalibrate=self.recalibrate)  # fmt: skip

    def run(self, arm: Arm, seed: int, run_dir: Path) -> tuple[dict[str, float], dict]:
        recipe = self.recipe
        mlm_dir = run_dir / "mlm"
        overrides = ",".join(f"{key}={value}" for key, value in recipe.model.items())
        limit = ["--max_train_samples", recipe.max_pretrain_blocks] if recipe.max_pretrain_blocks else []
        mlm = run_script("mlm", [
            "--train_file", *self.text_files, "--tokenizer_name", self.tokenizer_dir,
            "--max_seq_length", recipe.max_seq_length, *limit, "--max_eval_samples", recipe.mlm_eval_blocks,
            "--config_overrides", overrides, "--cls_norm", arm.cls_norm, "--sepnorm_scope", arm.sepnorm_scope,
            "--recalibrate_cls_norm", str(self.recalibrate).lower(),
            *training_flags(mlm_dir, steps=recipe.pretrain_steps, learning_rate=recipe.pretrain_learning_rate,
                            batch_size=recipe.batch_size, seed=seed, schedule=recipe.schedule),
        ])  # fmt: skip
        write_run_log(mlm_dir, mlm)
        results = {"mlm_eval_loss": mlm["eval_loss"]}
        encoder = load_encoder(SepNormBertModel, mlm_dir)  # the MLM head is not part of the encoder
        readouts, test_embeddings, test_labels = self._read_out(encoder, seed)
        results.update(readouts)
        set_seed(seed)
        random_readouts, _, _ = self._read_out(SepNormBertModel(SepNormBertConfig.from_pretrained(mlm_dir)), seed)
        results.update(prefixed(random_readouts, "random_init_"))
        results.update(glue_finetune(run_dir, model=mlm_dir, recipe=recipe, glue_dir=self.glue_dir, seed=seed,
                                     recalibrate=self.recalibrate, arm_flags=fine_tuning_flags(arm),
                                     cls_batchnorm=arm.cls_norm == "batch"))  # fmt: skip
        return results, {"embeddings": test_embeddings, "labels": test_labels}
