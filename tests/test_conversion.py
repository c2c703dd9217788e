"""Converting stock checkpoints: the right SepNorm class, loud failures, preprocessors carried over."""

import pytest
import torch
from conftest import TINY_BERT, bert_inputs
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

from hf_sepnorm import SepNormBertForMaskedLM, SepNormBertForSequenceClassification, convert_stock_checkpoint
from hf_sepnorm.conversion import sepnorm_class_for


@pytest.fixture
def stock_mlm_folder(tmp_path):
    folder = tmp_path / "stock"
    BertForMaskedLM(BertConfig(**TINY_BERT)).save_pretrained(folder)
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    ).save_pretrained(folder)
    return folder


def test_convert_picks_the_matching_head_and_saves_a_loadable_folder(stock_mlm_folder, tmp_path):
    model = convert_stock_checkpoint(stock_mlm_folder, tmp_path / "out", cls_norm="batch")
    assert type(model) is SepNormBertForMaskedLM
    assert model.config.cls_norm == "batch" and model.config.model_type == "sepnorm_bert"
    reloaded, info = AutoModelForMaskedLM.from_pretrained(tmp_path / "out", output_loading_info=True)
    assert type(reloaded) is SepNormBertForMaskedLM and not info["missing_keys"]
    inputs = bert_inputs()
    assert torch.equal(reloaded.eval()(**inputs).logits, model.eval()(**inputs).logits)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tokenizer("hello world")["input_ids"] == [5, 6]


def test_cls_norm_starts_from_the_token_norm(stock_mlm_folder):
    model = convert_stock_checkpoint(stock_mlm_folder, cls_norm="batch")
    sepnorm = model.bert.encoder.layer[1].output.LayerNorm
    assert torch.equal(sepnorm.cls_norm.weight, sepnorm.weight) and torch.equal(sepnorm.cls_norm.bias, sepnorm.bias)
    untouched = convert_stock_checkpoint(stock_mlm_folder, cls_norm="rms", init_cls_norm_from_token_norm=False)
    assert torch.equal(untouched.bert.encoder.layer[1].output.LayerNorm.cls_norm.weight, torch.ones(32))


def test_converting_into_a_head_the_checkpoint_lacks_fails_loudly(stock_mlm_folder):
    with pytest.raises(ValueError, match=r"left these weights randomly initialized: .*classifier"):
        convert_stock_checkpoint(stock_mlm_folder, model_class=SepNormBertForSequenceClassification)


def test_no_tokenizer_is_invented(tmp_path):
    folder = tmp_path / "bare"
    BertForMaskedLM(BertConfig(**TINY_BERT)).save_pretrained(folder)
    convert_stock_checkpoint(folder, tmp_path / "out")
    assert not (tmp_path / "out" / "tokenizer_config.json").exists()


def test_unsupported_family_is_named():
    with pytest.raises(ValueError, match="Cannot convert a 'gpt2' checkpoint: SepNorm supports \\['bert', 'vit_mae'\\]"):
        sepnorm_class_for(type("Config", (), {"model_type": "gpt2", "architectures": None})())
