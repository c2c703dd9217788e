"""Unsupervised SimCSE (Gao et al., 2021) with a SepNorm BERT or RoBERTa and the HF Trainer, evaluated on STS-B.

    hf-sepnorm simcse --model_name_or_path bert-base-uncased --cls_norm batch \
        --train_file sentences.txt --sts_dir glue/STS-B --output_dir simcse --do_train --do_eval

Each training sentence is encoded twice in ONE forward pass of 2N rows; dropout is the only augmentation, so the two
rows of a sentence are its two views, and the [CLS] BatchNorm normalizes both views with the same batch statistics.
The loss is InfoNCE (temperature 0.05) over in-batch negatives on an MLP over [CLS] (BERT's pooler, dense + tanh);
evaluation uses [CLS] without the MLP (SimCSE's `cls_before_pooler`). With several processes the embeddings are
gathered (with their gradient) so that the negatives, like the [CLS] BatchNorm statistics, span the global batch.

A stock BERT checkpoint is converted (`--cls_norm`, `--sepnorm_scope`); a SepNorm checkpoint is loaded. [CLS]
BatchNorm statistics that were never updated (a converted checkpoint's are (0, 1), which describe nothing) are
estimated on training sentences before any evaluation; statistics that training left are re-estimated only with
`--recalibrate_cls_norm true` (before each evaluation and after training; off by default, docs/cls_statistics.md). The MLP is BERT's
pooler (dense + tanh, SimCSE's MLP layer): the checkpoint's pooler when it has one, a new one otherwise (SimCSE
always starts a new one).

STS evaluation (alone with `--do_eval`, or during training with `--eval_strategy steps`): Spearman x 100 between the
cosine of the two sentences' embeddings and the gold score, on STS-B's dev pairs (`stsb_dev`, for model selection)
and train pairs (`stsb_train`: held out here, since unsupervised SimCSE never reads labels), for [CLS] (the primary
metric, `..._spearman`), the mean of the tokens (`..._spearman_mean_pooling`) and, as a control that separates
SepNorm from plain standardization, [CLS] standardized per feature with training-sentence statistics
(`..._spearman_standardized_cls`).

The output folder loads with `AutoModel.from_pretrained(folder, trust_remote_code=True)` and, when
sentence-transformers is installed, with `SentenceTransformer(folder, trust_remote_code=True)` ([CLS] pooling).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as distributed_functional
import torch.nn.functional as F
from datasets import Dataset, load_dataset
from scipy.stats import spearmanr
from transformers import AutoTokenizer, DataCollatorWithPadding, set_seed

from hf_sepnorm import SepNormBertModel
from hf_sepnorm.adapters import PeftArguments, apply_peft
from hf_sepnorm.data import load_glue
from hf_sepnorm.data.text import check_text_files
from hf_sepnorm.errors import InputError
from hf_sepnorm.families import FAMILIES
from hf_sepnorm.scripts.ending import train_and_evaluate, write_model_card
from hf_sepnorm.training import (
    SepNormModelArguments,
    SepNormTrainer,
    SepNormTrainingArguments,
    check_checkpoint_kind,
    fit_to_positions,
    frozen_standardization,
    load_or_build_model,
    model_class_for_checkpoint,
    parse_arguments,
    run_main,
)

logger = logging.getLogger(__name__)

STS_SPLITS = {"stsb_dev": "validation", "stsb_train": "train"}  # metric name -> split of the GLUE STS-B folder
POOLINGS = {"": "cls", "_mean_pooling": "mean", "_standardized_cls": "standardized_cls"}  # metric suffix -> pooling
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# the families whose base model has BERT's pooler (dense + tanh), SimCSE's MLP over [CLS]
POOLER_FAMILIES = ("sepnorm_bert", "sepnorm_roberta")
HEADING = re.compile(r"^\s*=(\s=)*\s.*\s=(\s=)*\s*$")  # a WikiText heading line: " = Title = ", " = = Section = = "


@dataclass
class SimCSEArguments:
    train_file: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Text file(s) of training sentences: one sentence per line, or plain text (see --split_sentences). "
            "Also the sentences that re-estimate the [CLS] BatchNorm statistics and standardize [CLS] for the control. "
            "Needed with --do_train; an evaluation without it skips the standardized control."
        },
    )
    encoding: str = field(default="utf-8", metadata={"help": "The --train_file files' encoding (e.g. latin-1)."})
    sts_dir: str | None = field(
        default=None, metadata={"help": "STS-B in the official GLUE layout (train.tsv, dev.tsv). Default: the Hub's."}
    )
    tokenizer_name: str | None = field(default=None, metadata={"help": "Tokenizer, if not the checkpoint's."})
    max_seq_length: int = field(default=32, metadata={"help": "Training sentences are truncated to this many tokens."})
    eval_max_seq_length: int = field(default=128, metadata={"help": "STS sentences are truncated to this many tokens."})
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature."})
    split_sentences: bool = field(
        default=True,
        metadata={"help": "Split each line into sentences at . ! ? followed by a space (a sentence per line stays)."},
    )
    min_words: int = field(default=3, metadata={"help": "Drop training sentences of fewer words (debris)."})
    drop_headings: bool = field(
        default=True, metadata={"help": "Drop WikiText-style heading lines (' = Title = ', ' = = Section = = ')."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training sentences."})
    max_eval_samples: int | None = field(
        default=None,
        metadata={"help": "Keep only this many pairs of each STS split, evenly spaced through the file (STS-B is "
                  "ordered by genre: a prefix would keep one genre)."},
    )
    standardization_samples: int = field(
        default=2048, metadata={"help": "Training sentences whose [CLS] statistics standardize [CLS] in the control."}
    )
    eval_batch_size: int = field(default=128, metadata={"help": "Sentences per forward pass when embedding."})


@dataclass
class SimCSETrainingArguments(SepNormTrainingArguments):
    """TrainingArguments (and the [CLS] BatchNorm options) with SimCSE's defaults."""

    learning_rate: float = field(default=3e-5, metadata={"help": "SimCSE's learning rate for BERT-base."})
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Sentences per process and step."})
    # the [CLS] BatchNorm and the in-batch negatives need full batches
    dataloader_drop_last: bool = field(default=True, metadata={"help": "Drop the last incomplete batch."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the tokenized columns as they are."})


def read_sentences(files: list[str], split_sentences: bool, min_words: int, drop_headings: bool = True,
                   encoding: str = "utf-8") -> Dataset:  # fmt: skip
    """A `sentence` column: the files' non-blank lines (headings dropped when asked), each split into sentences when
    asked, short ones dropped. The files are read as `encoding` text."""
    check_text_files(files, "--train_file", encoding)
    lines = load_dataset("text", data_files={"train": files}, encoding=encoding)["train"]

    def to_sentences(batch):
        kept = [line for line in batch["text"] if not (drop_headings and HEADING.match(line))]
        pieces = (SENTENCE_END.split(line.strip()) if split_sentences else [line.strip()] for line in kept)
        return {"sentence": [s for piece in pieces for s in piece if len(s.split()) >= min_words]}

    sentences = lines.map(to_sentences, batched=True, remove_columns=["text"], desc="Splitting into sentences")
    if len(sentences) < 2:
        raise InputError(f"--train_file {files}: fewer than 2 sentences of >= {min_words} words; SimCSE needs many.")
    return sentences


class TwoViewCollator(DataCollatorWithPadding):
    """Pads N sentences and repeats each one: rows 2i and 2i+1 are the two dropout views of sentence i."""

    def __call__(self, features):
        batch = super().__call__(features)
        return {key: value.repeat_interleave(2, dim=0) for key, value in batch.items()}


def gather_with_gradient(embeddings: torch.Tensor) -> torch.Tensor:
    """The embeddings of every process, in rank order. The gather is differentiable: every process computes the same
    global loss, each one's rows receive the gradient summed over processes (world_size x dLoss/drows), and DDP's
    average of the weight gradients then equals one process's gradient on the concatenated batch."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return embeddings
    return torch.cat(distributed_functional.all_gather(embeddings), dim=0)


def simcse_loss(pooled: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE over the global batch: view 1 of sentence i must pick view 2 of sentence i among all view-2 rows."""
    views = pooled.view(-1, 2, pooled.shape[-1])
    first, second = gather_with_gradient(views[:, 0]), gather_with_gradient(views[:, 1])
    similarity = F.cosine_similarity(first.unsqueeze(1), second.unsqueeze(0), dim=-1) / temperature
    return F.cross_entropy(similarity.float(), torch.arange(len(first), device=similarity.device))


def spearman_x100(predicted, gold) -> float:
    return float(spearmanr(predicted, gold).correlation * 100)


class SimCSETrainer(SepNormTrainer):
    """The SimCSE loss and STS evaluation on the `SepNormTrainer`, which re-estimates the [CLS] BatchNorm statistics
    after training and before an evaluation that follows training steps, synchronizes them across processes and
    writes the package's model card (with sentence-transformers usage once the folder is one)."""

    def __init__(self, *args, sts_pairs: dict, reference_sentences: list[str], simcse_args: SimCSEArguments, **kwargs):
        super().__init__(*args, **kwargs)
        self.sts_pairs = sts_pairs
        self.reference_sentences = reference_sentences
        self.simcse_args = simcse_args

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss = simcse_loss(outputs.pooler_output, self.simcse_args.temperature)
        return (loss, outputs) if return_outputs else loss

    # --- STS evaluation -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, sentences: list[str], max_length: int) -> dict[str, np.ndarray]:
        """[CLS] before the MLP and the mean of the tokens, in eval mode; longest-first batches for speed."""
        model = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        cls_rows, mean_rows = [None] * len(sentences), [None] * len(sentences)
        size = self.simcse_args.eval_batch_size
        try:
            for start in range(0, len(order), size):
                indices = order[start : start + size]
                batch = self.processing_class(
                    [sentences[i] for i in indices], padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt",
                ).to(device)  # fmt: skip
                hidden = model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                means = (hidden * mask).sum(1) / mask.sum(1)
                for row, i in enumerate(indices):
                    cls_rows[i], mean_rows[i] = hidden[row, 0].cpu(), means[row].cpu()
        finally:
            model.train(was_training)
        return {"cls": torch.stack(cls_rows).numpy(), "mean": torch.stack(mean_rows).numpy()}

    def sts_metrics(self) -> dict[str, float]:
        max_length = self.simcse_args.eval_max_seq_length
        poolings = POOLINGS if self.reference_sentences else {k: v for k, v in POOLINGS.items() if v != "standardized_cls"}
        if self.reference_sentences:  # the control: [CLS] standardized with training-sentence statistics
            reference = self.embed(self.reference_sentences[: self.simcse_args.standardization_samples], max_length)
            # BatchNorm's epsilon: a feature constant on the training sentences maps to about 0, not to its noise
            center, scale = (value.numpy() for value in frozen_standardization(torch.from_numpy(reference["cls"])))
        metrics = {}
        for name, pairs in self.sts_pairs.items():
            unique = sorted(set(pairs["sentence1"]) | set(pairs["sentence2"]))
            embeddings = self.embed(unique, max_length)
            if self.reference_sentences:
                embeddings["standardized_cls"] = (embeddings["cls"] - center) / scale
            row = {sentence: i for i, sentence in enumerate(unique)}
            first = [row[s] for s in pairs["sentence1"]]
            second = [row[s] for s in pairs["sentence2"]]
            for suffix, pooling in poolings.items():
                vectors = torch.from_numpy(embeddings[pooling])
                cosine = F.cosine_similarity(vectors[first], vectors[second], dim=-1).numpy()
                metrics[f"{name}_spearman{suffix}"] = spearman_x100(cosine, pairs["label"])
            metrics[f"{name}_pairs"] = len(first)
        return metrics

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """STS-B Spearman x 100 (the pairs given at construction; `eval_dataset` is not used)."""
        self.recalibrate_if_stale()
        metrics = {f"{metric_key_prefix}_{key}": value for key, value in self.sts_metrics().items()}
        if self.state.epoch is not None:
            metrics["epoch"] = self.state.epoch
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def load_sts_pairs(sts_dir: str | None, max_pairs: int | None, cache_dir: str | None) -> dict[str, dict]:
    stsb = load_glue("stsb", sts_dir, cache_dir=cache_dir)
    pairs = {}
    for name, split in STS_SPLITS.items():
        dataset = stsb[split]
        if max_pairs is not None and max_pairs < len(dataset):
            dataset = dataset.select(np.linspace(0, len(dataset) - 1, max_pairs).round().astype(int).tolist())
        pairs[name] = {column: list(dataset[column]) for column in ("sentence1", "sentence2", "label")}
    return pairs


def write_sentence_transformers_files(output_dir: str, max_seq_length: int) -> bool:
    """Make `SentenceTransformer(output_dir, trust_remote_code=True)` load the model with [CLS] pooling, written by
    sentence-transformers itself (it re-saves the same weights). Skipped when it is not installed."""
    try:
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:
        logger.info("sentence-transformers is not installed: the output folder loads with transformers only")
        return False
    transformer = Transformer(output_dir, max_seq_length=max_seq_length)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="cls")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(output_dir, create_model_card=False)
    return True


def main(args: list[str] | None = None) -> dict[str, float]:
    model_args, simcse_args, peft_args, training_args = parse_arguments(
        SepNormModelArguments, SimCSEArguments, PeftArguments, SimCSETrainingArguments, args=args
    )
    if model_args.model_name_or_path is None:
        raise InputError("--model_name_or_path is required: SimCSE starts from a pretrained BERT (stock or SepNorm).")
    check_checkpoint_kind(SepNormBertModel, model_args)
    for name in ("max_seq_length", "eval_max_seq_length"):
        setattr(simcse_args, name, fit_to_positions(getattr(simcse_args, name), f"--{name}", model_args))
    model_class = model_class_for_checkpoint(SepNormBertModel, model_args)  # the checkpoint family's base model
    if (model_type := model_class.config_class.model_type) not in POOLER_FAMILIES:
        raise InputError(
            f"--model_name_or_path {model_args.model_name_or_path} is a {FAMILIES[model_type].name} checkpoint, whose "
            f"base model has no pooler (SimCSE's MLP over [CLS]): give a "
            f"{' or '.join(FAMILIES[name].name for name in POOLER_FAMILIES)} checkpoint (stock or SepNorm)."
        )
    set_seed(training_args.seed)
    tokenizer = AutoTokenizer.from_pretrained(
        simcse_args.tokenizer_name or model_args.model_name_or_path, revision=model_args.revision,
        cache_dir=model_args.cache_dir,
    )
    if training_args.do_train and not simcse_args.train_file:
        raise InputError("--do_train needs --train_file: the sentences SimCSE trains on (one per line, or plain text).")
    train_dataset, reference_sentences = None, []
    if simcse_args.train_file:
        with training_args.main_process_first(desc="reading sentences"):
            sentences = read_sentences(
                simcse_args.train_file, simcse_args.split_sentences, simcse_args.min_words, simcse_args.drop_headings,
                simcse_args.encoding,
            )
        if simcse_args.max_train_samples is not None:
            sentences = sentences.select(range(min(simcse_args.max_train_samples, len(sentences))))
        reference_sentences = list(sentences["sentence"])
        with training_args.main_process_first(desc="tokenizing"):
            train_dataset = sentences.map(
                lambda batch: tokenizer(batch["sentence"], truncation=True, max_length=simcse_args.max_seq_length),
                batched=True, remove_columns=["sentence"], desc="Tokenizing",
            )  # fmt: skip
    else:
        logger.warning("No --train_file: STS-B is evaluated without the standardized-[CLS] control, and [CLS] "
                       "BatchNorm statistics are used as the checkpoint holds them")  # fmt: skip
    sts_pairs = load_sts_pairs(simcse_args.sts_dir, simcse_args.max_eval_samples, model_args.cache_dir)

    model = apply_peft(load_or_build_model(model_class, model_args), peft_args)
    trainer = SimCSETrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=train_dataset,  # unused: `evaluate` reads STS-B, but the Trainer wants one with --eval_strategy
        data_collator=TwoViewCollator(tokenizer),
        processing_class=tokenizer,
        sts_pairs=sts_pairs,
        reference_sentences=reference_sentences,
        simcse_args=simcse_args,
    )

    def write_sentence_transformers_modules() -> None:
        if trainer.is_world_process_zero() and not peft_args.use_peft:
            write_sentence_transformers_files(training_args.output_dir, simcse_args.eval_max_seq_length)

    # the STS-B evaluation: `SimCSETrainer.evaluate` reads the pairs, not an eval set
    results = train_and_evaluate(
        trainer, train_dataset=train_dataset, evaluate=trainer.evaluate, after_save=write_sentence_transformers_modules
    )
    # STS-B, from the official files or the Hub
    write_model_card(trainer, finetuned_from=model_args.model_name_or_path, tags=["sentence-similarity", "simcse"],
                     dataset_tags="nyu-mll/glue", dataset_args="stsb")  # fmt: skip
    return results


if __name__ == "__main__":
    run_main(main)
