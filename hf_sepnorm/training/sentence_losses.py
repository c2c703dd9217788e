"""sentence-transformers' contrastive loss with every column in one forward pass, for models with a [CLS] BatchNorm.

sentence-transformers' `MultipleNegativesRankingLoss` embeds the anchor column in a forward pass of its own and the
candidate columns (positives, negatives) in another (`embed_columns(..., separate_first=True)`). Its note that "the
loss and gradients are the same either way" holds for per-sample models only: a [CLS] BatchNorm normalizes each pass
with that pass's batch statistics, so anchors and positives would be normalized two different ways, and the in-batch
negatives of the loss compare embeddings from two normalizations. Train with this loss instead: the same loss, the
same arguments, one forward pass over all columns (anchors first), so every [CLS] shares the batch statistics.

    from hf_sepnorm.training.sentence_losses import OneForwardMultipleNegativesRankingLoss
    loss = OneForwardMultipleNegativesRankingLoss(model)  # model: a SentenceTransformer of a SepNorm checkpoint
    SentenceTransformerTrainer(model=model, train_dataset=pairs, loss=loss).train()
"""

from __future__ import annotations

from collections.abc import Iterable

from sentence_transformers.base.losses.merged_forward import merge_feature_batches
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import Tensor


class OneForwardMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """`MultipleNegativesRankingLoss` whose columns go through the model in one forward pass."""

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        columns = list(sentence_features)
        merged = merge_feature_batches(columns) if len(columns) > 1 else columns[0]
        if merged is None:
            raise ValueError(
                "The loss's columns cannot go through one forward pass (sentence-transformers' log says why), so a "
                "[CLS] BatchNorm would normalize them with different batch statistics: give every column the same "
                "features (the same tokenizer and prompts), or use a [CLS] norm without batch statistics."
            )
        embeddings = self.model(merged)["sentence_embedding"]
        # merged rows are column-major: all anchors, then all positives, ...
        by_column = embeddings.reshape(len(columns), -1, embeddings.shape[-1])
        return self.compute_loss_from_embeddings(list(by_column), labels)
