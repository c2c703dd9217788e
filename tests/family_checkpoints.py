"""Tiny checkpoints of every SepNorm family and of the stock model it converts from, saved with their tokenizer or
image processor, for tests that go through the family registry (conversion, cards, pushes, remote code)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from conftest import TINY_BERT, TINY_VIT_MAE
from PIL import Image
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from without_package import BLOCK_HF_SEPNORM
from transformers import PreTrainedTokenizerFast, ViTImageProcessor

WORDS = ["sepnorm", "gives", "a", "norm", "of", "its", "own", "which", "token", "gets", "the", "with", "other"]
TINY_ROBERTA = dict(TINY_BERT, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
# ModernBERT: [CLS]=0, [PAD]=1, [SEP]=2 as `modernbert_tokenizer` numbers them; sliding attention every other layer
TINY_MODERNBERT = dict(
    vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
    max_position_embeddings=64, global_attn_every_n_layers=2, local_attention=8,
    pad_token_id=1, cls_token_id=0, bos_token_id=0, sep_token_id=2, eos_token_id=2,
)  # fmt: skip
# DINOv2 with 2 registers, 16 patches of 8x8 pixels
TINY_DINOV2 = dict(
    image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
    num_register_tokens=2,
)  # fmt: skip



def word_tokenizer(cls: str, sep: str, specials: list[str], with_token_types: bool) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over WORDS framing texts as `cls text sep` (and pairs), [CLS] at position 0."""
    vocab = {token: index for index, token in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=specials[3]))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    second = ":1" if with_token_types else ""
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B{second} {sep}{second}",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    pad, unk, mask = specials[1], specials[3], specials[4]
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        cls_token=cls,
        sep_token=sep,
        pad_token=pad,
        unk_token=unk,
        mask_token=mask,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"]
        if with_token_types
        else ["input_ids", "attention_mask"],
    )


def bert_tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer("[CLS]", "[SEP]", ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"], with_token_types=True)


def roberta_tokenizer() -> PreTrainedTokenizerFast:
    # RoBERTa's ids: <s>=0, <pad>=1, </s>=2; one token type
    return word_tokenizer("<s>", "</s>", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], with_token_types=False)


def modernbert_tokenizer() -> PreTrainedTokenizerFast:
    return word_tokenizer("[CLS]", "[SEP]", ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"], with_token_types=False)


def image_processor() -> ViTImageProcessor:
    return ViTImageProcessor(size={"height": TINY_VIT_MAE["image_size"], "width": TINY_VIT_MAE["image_size"]})


def dinov2_image_processor():
    from transformers import BitImageProcessor  # DINOv2's: resize the shortest edge, then crop the centre

    size = TINY_DINOV2["image_size"]
    return BitImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


# Per SepNorm family: its tiny config, its preprocessor, and the stock pretraining class of each stock type
TINY_CONFIGS = {"sepnorm_bert": TINY_BERT, "sepnorm_roberta": TINY_ROBERTA, "sepnorm_vit_mae": TINY_VIT_MAE,
                "sepnorm_modernbert": TINY_MODERNBERT, "sepnorm_dinov2": TINY_DINOV2}  # fmt: skip
PREPROCESSORS = {"sepnorm_bert": bert_tokenizer, "sepnorm_roberta": roberta_tokenizer, "sepnorm_vit_mae": image_processor,
                 "sepnorm_modernbert": modernbert_tokenizer, "sepnorm_dinov2": dinov2_image_processor}  # fmt: skip
STOCK_PRETRAINING_CLASSES = {"bert": "BertForMaskedLM", "roberta": "RobertaForMaskedLM",
                             "vit_mae": "ViTMAEForPreTraining", "modernbert": "ModernBertForMaskedLM",
                             "dinov2": "Dinov2Model", "dinov2_with_registers": "Dinov2WithRegistersModel"}  # fmt: skip
# ... and the SepNorm class each converts into
CONVERTED_CLASSES = {"bert": "SepNormBertForMaskedLM", "roberta": "SepNormRobertaForMaskedLM",
                     "vit_mae": "SepNormViTMAEForPreTraining", "modernbert": "SepNormModernBertForMaskedLM",
                     "dinov2": "SepNormDinov2Model", "dinov2_with_registers": "SepNormDinov2Model"}  # fmt: skip


def save_image(path: Path) -> Path:
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (48, 40, 3), generator=generator, dtype=torch.uint8).numpy()
    Image.fromarray(pixels).save(path)
    return path


def sepnorm_config(model_type: str, **overrides):
    from hf_sepnorm import FAMILIES

    return FAMILIES[model_type].config_class(**{**TINY_CONFIGS[model_type], **overrides})


def preprocessor_for(model_type: str):
    return PREPROCESSORS[model_type]()


def inputs_for(model_type: str, batch_size: int = 4) -> dict[str, torch.Tensor]:
    if model_type in ("sepnorm_vit_mae", "sepnorm_dinov2"):
        return {"pixel_values": torch.randn(batch_size, 3, 32, 32)}
    texts = [" ".join(WORDS[i : i + 3 + i % 4]) for i in range(batch_size)]
    encoded = preprocessor_for(model_type)(texts, padding=True, return_tensors="pt")
    return dict(encoded)


def save_sepnorm_checkpoint(model_class, folder: Path, **config_overrides) -> Path:
    """`model_class` (a SepNorm class) with a tiny config, saved with its family's preprocessor."""
    model_type = model_class.config_class.model_type
    model_class(sepnorm_config(model_type, **config_overrides)).save_pretrained(folder)
    preprocessor_for(model_type).save_pretrained(folder)
    return folder


def save_stock_checkpoint(stock_model_type: str, folder: Path) -> Path:
    """A tiny stock pretraining checkpoint (`STOCK_PRETRAINING_CLASSES`: BertForMaskedLM, ..., Dinov2Model) with its
    preprocessor, as the Hub would hold it; its LayerNorms are not at their initial values, as after training."""
    import transformers

    from hf_sepnorm import family_of

    family = family_of(stock_model_type)
    tiny = dict(TINY_CONFIGS[family.model_type])
    if stock_model_type == "dinov2":
        tiny.pop("num_register_tokens")
    config = transformers.AutoConfig.for_model(stock_model_type, **tiny)
    model = getattr(transformers, STOCK_PRETRAINING_CLASSES[stock_model_type])(config)
    preprocessor = preprocessor_for(family.model_type)
    with torch.no_grad():  # trained-looking norms: a [CLS] norm left at its default init would then show
        for norm in (module for module in model.modules() if isinstance(module, torch.nn.LayerNorm)):
            norm.weight.normal_(1.0, 0.3)
            if norm.bias is not None:  # ModernBERT's norms have none
                norm.bias.normal_(0.0, 0.3)
    model.save_pretrained(folder)
    preprocessor.save_pretrained(folder)
    return folder


RUN_SNIPPETS_WITHOUT_PACKAGE = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    results = {}
    for snippet_file in sys.argv[1:]:
        namespace = {"__name__": "__main__"}
        exec(compile(open(snippet_file).read(), snippet_file, "exec"), namespace)
        model = namespace["model"]
        results[snippet_file] = {
            "class": type(model).__name__,
            "module": type(model).__module__,
            "names": sorted(name for name in namespace if not name.startswith("__")),
        }
    print(json.dumps(results))
    """
)


def usage_snippets(readme: str) -> list[str]:
    """The Python blocks of a model card's Usage section, in order."""
    usage = readme.split("## Usage")[1].split("\n## ")[0]
    return re.findall(r"```python\n(.*?)```", usage, flags=re.DOTALL)


def run_snippets_without_package(snippet_files: list, cwd: Path, env: dict) -> dict:
    """Run each file (a card's usage code) in one fresh process where hf_sepnorm cannot be imported; returns, per
    file, the class and module of the `model` it built and the names it defined."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_SNIPPETS_WITHOUT_PACKAGE, *map(str, snippet_files)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        env={**os.environ, "HF_MODULES_CACHE": str(cwd / "modules"), **env},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
