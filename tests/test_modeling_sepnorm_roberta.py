"""SepNorm RoBERTa beyond what every text family does (tests/test_text_families.py): its positions start after the
padding index, and a too-long input says so."""

import pytest
import torch

from hf_sepnorm.remote_code.configuration_sepnorm_roberta import SepNormRobertaConfig
from hf_sepnorm.remote_code.modeling_sepnorm_roberta import SepNormRobertaModel

TINY_ROBERTA = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    max_position_embeddings=66, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip


def roberta_inputs(batch_size: int = 4, seq_length: int = 10) -> dict[str, torch.Tensor]:
    input_ids = torch.randint(3, 99, (batch_size, seq_length))
    input_ids[:, 0] = 0  # <s>, RoBERTa's [CLS]
    input_ids[0, -3:] = 1  # <pad>
    return {"input_ids": input_ids, "attention_mask": (input_ids != 1).long()}


def test_padded_inputs_chunk_alike_and_too_long_inputs_name_the_limit():
    model = SepNormRobertaModel(SepNormRobertaConfig(**TINY_ROBERTA, cls_norm="batch")).train()
    chunked = SepNormRobertaModel(SepNormRobertaConfig(**TINY_ROBERTA, cls_norm="batch", chunk_size_feed_forward=2))
    chunked.load_state_dict(model.state_dict())
    inputs = roberta_inputs()
    torch.testing.assert_close(chunked(**inputs).last_hidden_state, model(**inputs).last_hidden_state, rtol=0, atol=1e-6)
    # positions start after the padding index: 64 of the 66 position embeddings are usable
    with pytest.raises(ValueError, match="65 tokens exceed max_position_embeddings=66 less 2 reserved positions"):
        model(input_ids=torch.full((2, 65), 5))
