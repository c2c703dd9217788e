"""The recipes of `hf-sepnorm compare`: what each preset trains, identical for every arm but `cls_norm`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageRecipe:
    """MAE pretraining, then linear probe and fine-tuning of the [CLS] token, on an image set."""

    model: dict = field(default_factory=dict)  # SepNormViTMAEConfig fields
    max_train_images: int | None = None
    max_test_images: int | None = None
    augment: bool = True
    batch_size: int = 64
    pretrain_steps: int = 300
    pretrain_learning_rate: float = 1.5e-3
    finetune_steps: int = 200
    finetune_learning_rate: float = 1e-3
    recalibration_batches: int = 20


@dataclass(frozen=True)
class TextRecipe:
    """Masked-LM pretraining, then fine-tuning on GLUE tasks, of the [CLS] token."""

    model: dict = field(default_factory=dict)  # SepNormBertConfig fields
    vocab_size: int = 8000
    max_seq_length: int = 128
    max_pretrain_blocks: int | None = None
    batch_size: int = 32
    pretrain_steps: int = 500
    pretrain_learning_rate: float = 1e-3
    glue_tasks: tuple[str, ...] = ("sst2", "cola", "mrpc", "stsb")
    max_glue_train: int | None = 2000
    max_glue_eval: int | None = 1000
    finetune_steps: int = 200
    finetune_learning_rate: float = 1e-4
    recalibration_batches: int = 20


@dataclass(frozen=True)
class Preset:
    name: str
    seeds: int
    image: ImageRecipe
    text: TextRecipe
    note: str


_TINY_VIT = dict(
    hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128,
    decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, norm_pix_loss=True,
)  # fmt: skip
_SMALL_VIT = {**_TINY_VIT, "hidden_size": 128, "num_hidden_layers": 6, "intermediate_size": 256, "patch_size": 4}
_TINY_BERT = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128)
_SMALL_BERT = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512)

PRESETS = {
    "tiny": Preset(
        name="tiny",
        seeds=2,
        image=ImageRecipe(model={**_TINY_VIT, "patch_size": 2}, augment=False, batch_size=64, pretrain_steps=300,
                          finetune_steps=150),
        text=TextRecipe(model=_TINY_BERT, vocab_size=4000, max_seq_length=64, max_pretrain_blocks=4000,
                        pretrain_steps=200, max_glue_train=1000, max_glue_eval=500, finetune_steps=100),
        note="a few minutes on 2 CPU cores: sklearn digits (8x8) for images",
    ),
    "small": Preset(
        name="small",
        seeds=3,
        image=ImageRecipe(model=_SMALL_VIT, max_train_images=10000, max_test_images=2000, batch_size=64,
                          pretrain_steps=400, finetune_steps=150),
        text=TextRecipe(model=_SMALL_BERT, vocab_size=4000, max_seq_length=64, max_pretrain_blocks=40000,
                        pretrain_steps=300, max_glue_train=2000, max_glue_eval=500, finetune_steps=100,
                        finetune_learning_rate=5e-4),
        note="about an hour per track on 2 CPU cores (CIFAR-10; MLM on the shared text, 4 GLUE tasks)",
    ),
    "paper": Preset(
        name="paper",
        seeds=3,
        image=ImageRecipe(
            model=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                       decoder_hidden_size=512, decoder_num_hidden_layers=8, decoder_num_attention_heads=16,
                       decoder_intermediate_size=2048, patch_size=4, norm_pix_loss=True),
            batch_size=256, pretrain_steps=200_000, pretrain_learning_rate=1.5e-4, finetune_steps=20_000,
            finetune_learning_rate=5e-4, recalibration_batches=200,
        ),
        text=TextRecipe(
            model=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
            vocab_size=30522, max_seq_length=128, batch_size=256, pretrain_steps=100_000,
            pretrain_learning_rate=1e-4, max_glue_train=None, max_glue_eval=None, finetune_steps=3000,
            finetune_learning_rate=2e-5, recalibration_batches=200,
        ),
        note="the paper's model sizes (ViT-B / BERT-base): for GPUs, documented, not run here",
    ),
}  # fmt: skip


def recipe_as_dict(recipe) -> dict:
    return dataclasses.asdict(recipe)
