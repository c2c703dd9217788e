import os

import pytest
import torch

from hf_sepnorm import SepNormBertConfig, SepNormViTMAEConfig

TINY_BERT = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
TINY_VIT_MAE = dict(
    image_size=32,
    patch_size=8,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=32,
)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _isolated_hf_home(tmp_path_factory):
    """Remote-code modules and caches go to a temp folder, never the user's."""
    home = tmp_path_factory.mktemp("hf_home")
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_MODULES_CACHE"] = str(home / "modules")
    os.environ["HF_HUB_OFFLINE"] = "1"


def tiny_bert_config(**overrides) -> SepNormBertConfig:
    return SepNormBertConfig(**{**TINY_BERT, **overrides})


def tiny_vit_mae_config(**overrides) -> SepNormViTMAEConfig:
    return SepNormViTMAEConfig(**{**TINY_VIT_MAE, **overrides})


def bert_inputs(batch_size: int = 4, seq_length: int = 10, vocab_size: int = 99) -> dict[str, torch.Tensor]:
    input_ids = torch.randint(5, vocab_size, (batch_size, seq_length))
    input_ids[:, 0] = 2  # [CLS]
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, -3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def image_inputs(batch_size: int = 4, size: int = 32, channels: int = 3) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.randn(batch_size, channels, size, size)}
