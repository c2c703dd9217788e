"""The validation split every loader here needs: the user's, or a share held out of the training data."""

from __future__ import annotations

from datasets import DatasetDict


def with_validation_split(splits: DatasetDict, percentage: float, **split_options) -> DatasetDict:
    """`splits` if it has a `validation` split, else `train` and `validation`: `percentage` % of `train` held out
    with `Dataset.train_test_split(**split_options)` (e.g. `seed`, `shuffle`, `stratify_by_column`)."""
    if "validation" in splits:
        return splits
    held_out = splits["train"].train_test_split(test_size=percentage / 100, **split_options)
    return DatasetDict(train=held_out["train"], validation=held_out["test"])


def first_rows(dataset, count: int | None):
    """The first `count` rows of `dataset` (all of them when `count` is None or larger)."""
    return dataset if count is None else dataset.select(range(min(count, len(dataset))))
