"""Training a [CLS] BatchNorm model with sentence-transformers' own trainer, every column in one forward pass."""

import pytest
import torch
from datasets import Dataset
from family_checkpoints import save_sepnorm_checkpoint
from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

from hf_sepnorm import SepNormBertModel
from hf_sepnorm.cls_norms import cls_batchnorms
from hf_sepnorm.training.sentence_losses import OneForwardMultipleNegativesRankingLoss

PAIRS = {
    "anchor": ["A man plays a guitar.", "The stock market fell today.", "A cat sleeps on the sofa.", "It rains a lot."],
    "positive": ["Someone plays an instrument.", "Shares dropped sharply.", "A kitten naps on a couch.", "Wet day."],
}


def sentence_model(tmp_path, cls_norm: str) -> SentenceTransformer:
    folder = save_sepnorm_checkpoint(SepNormBertModel, tmp_path / cls_norm, cls_norm=cls_norm)
    remote = {"trust_remote_code": True}
    transformer = Transformer(str(folder), model_args=remote, config_args=remote)
    pooling = Pooling(transformer.get_embedding_dimension(), "cls")
    return SentenceTransformer(modules=[transformer, pooling], device="cpu")


def features(model: SentenceTransformer) -> list[dict]:
    return [model.preprocess(PAIRS["anchor"]), model.preprocess(PAIRS["positive"])]


def test_the_loss_is_sentence_transformers_own_on_a_model_without_batch_statistics(tmp_path):
    model = sentence_model(tmp_path, "layer").eval()  # per-sample norms, no dropout: one pass or two give the same
    labels = torch.arange(4)
    with torch.no_grad():
        expected = MultipleNegativesRankingLoss(model)(features(model), labels)
        loss = OneForwardMultipleNegativesRankingLoss(model)(features(model), labels)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss_class, passes_per_step", [(MultipleNegativesRankingLoss, 2),
                                                         (OneForwardMultipleNegativesRankingLoss, 1)])  # fmt: skip
def test_sentence_transformers_trainer_normalizes_anchors_and_positives_together(
    loss_class, passes_per_step, tmp_path
):
    model = sentence_model(tmp_path, "batch")
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=3, per_device_train_batch_size=4, learning_rate=1e-3,
        report_to="none", save_strategy="no", disable_tqdm=True, use_cpu=True,
    )  # fmt: skip
    trainer = SentenceTransformerTrainer(
        model=model, args=arguments, train_dataset=Dataset.from_dict(PAIRS), loss=loss_class(model)
    )
    result = trainer.train()
    # sentence-transformers' own loss normalizes the anchors and the positives in two passes, with two batch
    # statistics; the one-forward loss in one pass over the 8 sentences
    norms = cls_batchnorms(model[0].auto_model)
    assert norms and all(norm.num_batches_tracked.item() == 3 * passes_per_step for norm in norms)
    assert torch.isfinite(torch.tensor(result.training_loss))


def test_columns_that_cannot_share_a_pass_are_refused(tmp_path):
    model = sentence_model(tmp_path, "batch")
    anchors, positives = features(model)
    positives = {**positives, "extra": torch.zeros(4, 1)}  # features the anchors do not have
    with pytest.raises(ValueError, match="cannot go through one forward pass"):
        OneForwardMultipleNegativesRankingLoss(model)([anchors, positives], torch.arange(4))
