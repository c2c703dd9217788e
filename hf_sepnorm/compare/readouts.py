"""The rows a comparison reports (`Metric`), and the [CLS] readouts that fill most of them: the frozen [CLS]
embeddings of held-out data, read out with a probe, a k-NN and spread measures fitted on training embeddings
(`hf_sepnorm.analysis`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import torch
from transformers import DataCollatorWithPadding

from ..analysis import READOUTS, Standardizer, extract_cls_embeddings, readout_summary
from ..analysis.readouts import majority_class_accuracy
from ..data.glue import get_glue_task, glue_task_folder, load_glue
from ..recalibration import recalibrate_cls_batchnorm


@dataclasses.dataclass(frozen=True)
class Metric:
    """A row of the report. `role`: "primary" (the track's verdict), "secondary" (Holm-corrected together),
    "pretraining" (the pretraining objective, not gated), "reference" (random init / starting checkpoint: shown,
    used by the gate, not compared between arms), "re-estimation" (a row measured again with re-estimated [CLS]
    statistics: compared with that row within each arm) or "convergence" (a fine-tuning loss, read by the
    convergence check)."""

    key: str
    higher_is_better: bool
    description: str
    role: str = "secondary"


def readout_metrics(prefix: str = "", label: str = "", primary: str | None = "linear_probe_accuracy") -> list[Metric]:
    """A row per readout of `analysis.READOUTS`: of the trained [CLS] (no `prefix`; `primary` is the primary row),
    or of a reference such as `random_init_` (role "reference")."""
    rows = []
    for key, (higher, description) in READOUTS.items():
        role = "reference" if prefix else ("primary" if key == primary else "secondary")
        rows.append(Metric(prefix + key, higher, f"{label}{description}", role))
    return rows


def prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {prefix + key: value for key, value in metrics.items()}


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def batches(tensors: dict[str, torch.Tensor], batch_size: int, order: torch.Tensor | None = None) -> Iterator[dict]:
    count = len(next(iter(tensors.values())))
    order = torch.arange(count) if order is None else order
    for start in range(0, count, batch_size):
        index = order[start : start + batch_size]
        yield {key: value[index] for key, value in tensors.items()}


def read_out(model, *, train_batches, test_batches, recalibration_batches, recalibration_count: int,
             recalibrate: bool) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:  # fmt: skip
    """Re-estimate the [CLS] BatchNorm statistics on training data when `recalibrate` (as the scripts do before
    evaluation), then the readouts of the test [CLS] embeddings, fitted on the training ones. Returns them, the test
    embeddings standardized with the training statistics (what the readouts measure, for the plots) and the test
    labels."""
    model.to(device())
    if recalibrate:
        recalibrate_cls_batchnorm(model, recalibration_batches, max_batches=recalibration_count)
    train_x, train_y = extract_cls_embeddings(model, train_batches, return_labels=True)
    test_x, test_y = extract_cls_embeddings(model, test_batches, return_labels=True)
    return readout_summary(train_x, train_y, test_x, test_y), Standardizer.fit(train_x)(test_x).float(), test_y


class SentenceReadouts:
    """A GLUE classification task's sentences for [CLS] readouts: a fixed subset of training rows (seed 0) to fit
    on, the whole dev set to score on, and a bag-of-words baseline."""

    def __init__(self, task_name: str, *, glue_dir: str, train_rows: int, tokenizer, max_seq_length: int,
                 batch_size: int):  # fmt: skip
        task = get_glue_task(task_name)
        if task.is_regression:
            raise ValueError(f"[CLS] readouts need a classification task, not {task_name}.")
        raw = load_glue(task_name, str(glue_task_folder(glue_dir, task_name)))
        self.task, self.batch_size = task, batch_size
        train = raw["train"].shuffle(seed=0).select(range(min(train_rows, len(raw["train"]))))
        collate = DataCollatorWithPadding(tokenizer)

        def encode(split):
            texts = [list(split[column]) for column in task.output_text_columns]
            encoded = tokenizer(*texts, truncation=True, max_length=max_seq_length)
            rows = [{key: encoded[key][i] for key in encoded} for i in range(len(split))]
            encoded_batches = [collate(rows[start : start + batch_size]) for start in range(0, len(rows), batch_size)]
            labels = torch.tensor(list(split["label"]))
            for index, batch in enumerate(encoded_batches):
                batch["labels"] = labels[index * batch_size : (index + 1) * batch_size]
            return encoded_batches, encoded["input_ids"], labels

        self.train_batches, train_ids, self.train_labels = encode(train)
        self.test_batches, test_ids, self.test_labels = encode(raw["validation"])
        self.bags = self._bag_of_words(train_ids, test_ids)

    @staticmethod
    def _bag_of_words(train_ids, test_ids):
        vocabulary = sorted({token for ids in train_ids for token in ids})
        column = {token: index for index, token in enumerate(vocabulary)}

        def counts(rows):
            matrix = torch.zeros(len(rows), len(vocabulary), dtype=torch.float64)
            for row, ids in enumerate(rows):
                for token in ids:
                    if token in column:
                        matrix[row, column[token]] += 1
            return matrix

        return counts(train_ids), counts(test_ids)

    def baselines(self) -> dict[str, tuple[float, str]]:
        raw = readout_summary(self.bags[0], self.train_labels, self.bags[1], self.test_labels)
        name = self.task.name
        return {
            f"{name}: chance": (1 / self.task.num_labels, "1 / number of classes"),
            f"{name}: majority class": (majority_class_accuracy(self.train_labels, self.test_labels), "always the most frequent training class"),
            f"{name}: linear probe on bag of tokens": (raw["linear_probe_accuracy"], "the same probe as on [CLS], on token counts"),
        }  # fmt: skip

    def read_out(self, model, *, seed: int, recalibration_count: int, recalibrate: bool):
        """`read_out` of these sentences; the re-estimation, if any, sees the training batches in `seed`'s order."""
        order = torch.randperm(len(self.train_batches), generator=torch.Generator().manual_seed(seed)).tolist()
        return read_out(model, train_batches=self.train_batches, test_batches=self.test_batches,
                        recalibration_batches=[self.train_batches[i] for i in order],
                        recalibration_count=recalibration_count, recalibrate=recalibrate)  # fmt: skip
