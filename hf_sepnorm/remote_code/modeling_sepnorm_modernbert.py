"""SepNorm ModernBERT: transformers' ModernBERT classes with separate [CLS] normalization.

ModernBERT is pre-norm with bias-free LayerNorms (`norm_bias=False`): the embedding norm, each layer's `attn_norm`
and `mlp_norm`, the encoder's `final_norm`. Each becomes a SepNorm, bias-free like the norm it replaces (its [CLS]
LayerNorm too). The heads' `head.norm` stays shared: the classification heads apply it to one pooled vector per
sample, and the masked-LM head to the masked tokens only when `sparse_prediction` gathers them, where [CLS] is no
longer at position 0. Each class inherits the transformers class and only says where the SepNorms go; see
`sepnorm.py`.
"""

import torch
from transformers import (
    ModernBertForMaskedLM,
    ModernBertForMultipleChoice,
    ModernBertForQuestionAnswering,
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
    ModernBertModel,
    ModernBertPreTrainedModel,
)

from .auto_registration import register_family
from .configuration_sepnorm_modernbert import SepNormModernBertConfig
from .modeling_sepnorm_bert import check_text_inputs
from .sepnorm import SepNormPreTrainedMixin, select_sepnorm_paths


def modernbert_sepnorm_locations(config) -> dict[str, list[str]]:
    """The embedding norm, then each layer's attention and MLP norms, then `final_norm`.

    Layer 0 has no attention norm (ModernBERT makes it an `nn.Identity`: its input is the embedding norm's output,
    already normalized), so SepNorm adds none there either: layer 0's attention sees [CLS] as the embedding norm left
    it. With `cls_norm="batch"` that is the shared embedding LayerNorm (its [CLS] input is one learned vector for
    every sample, see `select_sepnorm_paths`), so [CLS]'s first separate norm is layer 0's `mlp_norm`.
    """
    layers = range(config.num_hidden_layers)
    norms = ["embeddings.norm"]
    for i in layers:
        norms += [f"layers.{i}.attn_norm"] if i > 0 else []
        norms += [f"layers.{i}.mlp_norm"]
    norms.append("final_norm")
    return {"cls_norm": select_sepnorm_paths(config, "cls_norm", norms, "final_norm", "embeddings.norm")}


def check_modernbert_inputs(config, inputs: dict) -> None:
    """Refuse the inputs on which [CLS] is not at position 0 of every row, before any work is spent.

    - Packed sequences (several sequences in one row, as `DataCollatorWithFlattening` builds them for flash
      attention: `position_ids` restarting at 0 inside a row, or the varlen `cu_seq_lens_q`) put later sequences'
      [CLS] elsewhere: a SepNorm would normalize those [CLS] tokens with the other tokens. (transformers 5's
      ModernBERT no longer unpads padded batches itself, as 4.x did: a padded batch keeps [CLS] at position 0.)
    - Left padding puts padding at position 0 (ModernBERT's multiple-choice head looks for [CLS] after it).
    """
    check_text_inputs(inputs, max_position_embeddings=None)  # rotary positions: longer inputs run (rope scaling)
    if torch.compiler.is_compiling():
        return  # the checks read tensor values (a host sync): they run in eager calls, not in a compiled graph
    position_ids = inputs.get("position_ids")
    packed = inputs.get("cu_seq_lens_q") is not None  # flash attention's varlen kwargs: sequences packed in a row
    if packed or (
        isinstance(position_ids, torch.Tensor) and position_ids.ndim == 2 and bool((position_ids[:, 1:] == 0).any())
    ):
        raise ValueError(
            "Packed sequences (position_ids restarting at 0 inside a row, or cu_seq_lens_q, as "
            "DataCollatorWithFlattening gives them): a SepNorm model normalizes position 0 of each row as [CLS], so "
            "it needs one sequence per row. Use a padding collator (DataCollatorWithPadding) instead."
        )
    attention_mask = inputs.get("attention_mask")
    if isinstance(attention_mask, torch.Tensor) and attention_mask.ndim == 2 and not bool(attention_mask[:, 0].all()):
        raise ValueError(
            "attention_mask is 0 at position 0 of some rows (left padding): a SepNorm model normalizes position 0 "
            "as [CLS]. Pad on the right (tokenizer.padding_side = 'right')."
        )


class SepNormModernBertPreTrainedModel(SepNormPreTrainedMixin, ModernBertPreTrainedModel):
    config_class = SepNormModernBertConfig
    config: SepNormModernBertConfig

    def sepnorm_locations(self) -> dict[str, list[str]]:
        return modernbert_sepnorm_locations(self.config)

    check_base_model_inputs = staticmethod(check_modernbert_inputs)


class SepNormModernBertModel(SepNormModernBertPreTrainedModel, ModernBertModel):
    pass


class SepNormModernBertForMaskedLM(SepNormModernBertPreTrainedModel, ModernBertForMaskedLM):
    pass


class SepNormModernBertForSequenceClassification(SepNormModernBertPreTrainedModel, ModernBertForSequenceClassification):
    pass


class SepNormModernBertForTokenClassification(SepNormModernBertPreTrainedModel, ModernBertForTokenClassification):
    pass


class SepNormModernBertForQuestionAnswering(SepNormModernBertPreTrainedModel, ModernBertForQuestionAnswering):
    pass


class SepNormModernBertForMultipleChoice(SepNormModernBertPreTrainedModel, ModernBertForMultipleChoice):
    pass


register_family(
    SepNormModernBertConfig,
    {
        "AutoModel": SepNormModernBertModel,
        "AutoModelForMaskedLM": SepNormModernBertForMaskedLM,
        "AutoModelForSequenceClassification": SepNormModernBertForSequenceClassification,
        "AutoModelForTokenClassification": SepNormModernBertForTokenClassification,
        "AutoModelForQuestionAnswering": SepNormModernBertForQuestionAnswering,
        "AutoModelForMultipleChoice": SepNormModernBertForMultipleChoice,
    },
)

__all__ = [
    "SepNormModernBertPreTrainedModel",
    "SepNormModernBertModel",
    "SepNormModernBertForMaskedLM",
    "SepNormModernBertForSequenceClassification",
    "SepNormModernBertForTokenClassification",
    "SepNormModernBertForQuestionAnswering",
    "SepNormModernBertForMultipleChoice",
]
