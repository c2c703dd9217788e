"""LoRA adapters (peft) on SepNorm models: the [CLS] norms, their running statistics included, travel with the adapter.

The main tests use the real all-MiniLM-L6-v2 converted to a SepNorm classifier with the [CLS] BatchNorm, trained a few
steps by the Trainer: the adapter reloaded on the saved base predicts exactly what the trained model predicts, and the
merged model loads where hf_sepnorm is not installed.
"""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import TINY_BERT, image_inputs, tiny_bert_config, tiny_vit_mae_config
from datasets import Dataset
from family_checkpoints import sepnorm_config
from hub_server import TEST_USER, hub_server  # noqa: F401 - `hub_server` is a fixture
from huggingface_hub import ModelCard
from peft import PeftModel
from reviews import PROBES, REVIEWS
from safetensors.torch import load_file
from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments
from without_package import BLOCK_HF_SEPNORM

from hf_sepnorm import (
    SepNormBertForMaskedLM,
    SepNormBertForQuestionAnswering,
    SepNormBertForSequenceClassification,
    SepNormBertForTokenClassification,
    SepNormBertModel,
    SepNormDinov2ForImageClassification,
    SepNormModernBertForSequenceClassification,
    SepNormRobertaConfig,
    SepNormRobertaForSequenceClassification,
    SepNormRobertaForTokenClassification,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEModel,
    convert_stock_checkpoint,
)
from hf_sepnorm.adapters import PeftArguments, apply_peft, default_lora_target_modules, push_adapter_to_hub
from hf_sepnorm.cls_norms import cls_batchnorms
from hf_sepnorm.hub import push_to_hub
from hf_sepnorm.recalibration import recalibrate_cls_batchnorm
from hf_sepnorm.remote_code.sepnorm import ClsBatchNorm

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LORA = PeftArguments(use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.0)


def tiny_roberta_config(**overrides) -> SepNormRobertaConfig:
    return SepNormRobertaConfig(**{**TINY_BERT, "pad_token_id": 1, **overrides})


def cls_statistics(model) -> list[torch.Tensor]:
    return [torch.cat([norm.running_mean, norm.running_var]).clone() for norm in cls_batchnorms(model)]


def train_lora(model, tokenizer, output_dir, steps: int = 3) -> Trainer:
    """A few LoRA steps of the Trainer on the reviews (real training: optimizer, dropout, [CLS] batch statistics)."""
    dataset = Dataset.from_dict({"sentence": [t for t, _ in REVIEWS], "label": [label for _, label in REVIEWS]})
    dataset = dataset.map(lambda batch: tokenizer(batch["sentence"], truncation=True, max_length=16), batched=True)
    args = TrainingArguments(
        output_dir=str(output_dir), max_steps=steps, per_device_train_batch_size=4, learning_rate=1e-2,
        report_to="none", save_strategy="no", disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = Trainer(
        model=model, args=args, train_dataset=dataset.remove_columns("sentence"),
        data_collator=DataCollatorWithPadding(tokenizer),
    )  # fmt: skip
    trainer.train()
    return trainer


@pytest.fixture(scope="module")
def minilm_base(minilm_dir, tmp_path_factory):
    """all-MiniLM-L6-v2 converted to a SepNorm classifier with [CLS] BatchNorms, saved (weights, code, tokenizer)."""
    folder = tmp_path_factory.mktemp("minilm_sepnorm")
    convert_stock_checkpoint(
        minilm_dir, folder, model_class=SepNormBertForSequenceClassification, allow_new_head=True, cls_norm="batch"
    )
    return folder


@pytest.fixture(scope="module")
def trained_adapter(minilm_base, tmp_path_factory):
    """LoRA trained on the converted MiniLM by the Trainer, saved; with the eval-mode logits of the trained model."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_base)
    base = SepNormBertForSequenceClassification.from_pretrained(minilm_base)
    statistics_before = cls_statistics(base)
    model = apply_peft(base, LORA)
    output_dir = tmp_path_factory.mktemp("lora")
    train_lora(model, tokenizer, output_dir)
    model.save_pretrained(output_dir / "adapter")
    model.eval()
    probes = tokenizer(PROBES, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**probes).logits
    return {
        "model": model, "dir": output_dir / "adapter", "probes": probes, "logits": logits,
        "statistics_before": statistics_before, "tokenizer": tokenizer,
    }  # fmt: skip


def test_adapter_carries_the_trained_cls_norms_and_their_statistics(trained_adapter):
    model = trained_adapter["model"]
    saved = load_file(trained_adapter["dir"] / "adapter_model.safetensors")
    norms = cls_batchnorms(model)
    assert len(norms) == 12  # both norms of each of the 6 layers; the embedding norm stays shared
    # training moved the statistics of the copies the adapter trains, and the adapter file holds them
    for norm, before in zip(norms, trained_adapter["statistics_before"]):
        assert not torch.equal(torch.cat([norm.running_mean, norm.running_var]), before)
        assert norm.num_batches_tracked.item() == 3
    for name, tensor in model.state_dict().items():
        if ".cls_norm.modules_to_save." in name:
            key = name.replace(".modules_to_save.default.", ".")
            assert torch.equal(saved[key], tensor), key
    buffers = [key for key in saved if key.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(buffers) == 3 * 12
    assert any(key.endswith("classifier.weight") for key in saved)
    # the rest of the base is frozen and not in the adapter
    assert not any(".query.weight" in key or ".LayerNorm.weight" in key for key in saved)


def test_adapter_reloaded_on_the_base_predicts_identically(trained_adapter, minilm_base):
    base = SepNormBertForSequenceClassification.from_pretrained(minilm_base)
    reloaded = PeftModel.from_pretrained(base, trained_adapter["dir"]).eval()
    with torch.no_grad():
        logits = reloaded(**trained_adapter["probes"]).logits
    assert torch.equal(logits, trained_adapter["logits"])
    # the base model alone (adapters disabled) is not what was trained: the comparison above can fail
    with reloaded.disable_adapter(), torch.no_grad():
        assert not torch.allclose(reloaded(**trained_adapter["probes"]).logits, logits, atol=1e-3)


MERGED_LOGITS_WITHOUT_PACKAGE = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder, out_file = sys.argv[1], sys.argv[2]
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        logits = model(**tokenizer(json.loads(sys.argv[3]), padding=True, return_tensors="pt")).logits
    save_file({"logits": logits}, out_file)
    print(type(model).__name__)
    """
)


@pytest.mark.slow
def test_merged_model_loads_without_the_package_and_predicts_identically(trained_adapter, minilm_base, tmp_path):
    base = SepNormBertForSequenceClassification.from_pretrained(minilm_base)
    merged = PeftModel.from_pretrained(base, trained_adapter["dir"]).merge_and_unload()
    assert type(merged) is SepNormBertForSequenceClassification
    assert all(type(norm) is ClsBatchNorm for norm in cls_batchnorms(merged))
    merged.save_pretrained(tmp_path / "merged")
    trained_adapter["tokenizer"].save_pretrained(tmp_path / "merged")
    result = subprocess.run(
        [sys.executable, "-c", MERGED_LOGITS_WITHOUT_PACKAGE, str(tmp_path / "merged"), str(tmp_path / "out.st"),
         json.dumps(PROBES)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "SepNormBertForSequenceClassification"
    # merging adds the LoRA product to the weights: equal to float rounding, not bit for bit
    torch.testing.assert_close(load_file(tmp_path / "out.st")["logits"], trained_adapter["logits"], atol=1e-5, rtol=0)


def test_recalibration_reaches_the_norms_the_adapter_trains(trained_adapter):
    model = trained_adapter["model"]
    batches = [trained_adapter["tokenizer"](PROBES, padding=True, return_tensors="pt")]
    adapter_norms = cls_batchnorms(model)
    assert all(".modules_to_save." in name for name, module in model.named_modules() if module in adapter_norms)
    before = cls_statistics(model)
    try:
        assert recalibrate_cls_batchnorm(model, batches) == 1
        assert all(not torch.equal(a, b) for a, b in zip(cls_statistics(model), before))
    finally:
        for norm, statistics in zip(adapter_norms, before):
            norm.running_mean.copy_(statistics[: norm.num_features])
            norm.running_var.copy_(statistics[norm.num_features :])


@pytest.mark.parametrize("cls_norm", ["batch", "layer"])
def test_vit_mae_classifier_adapter_round_trip(cls_norm, tmp_path):
    model = SepNormViTMAEForImageClassification(tiny_vit_mae_config(cls_norm=cls_norm, num_labels=3))
    model.save_pretrained(tmp_path / "base")
    peft_model = apply_peft(model, LORA)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    for _ in range(2):
        peft_model(**image_inputs(), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    peft_model.eval()
    probe = image_inputs(batch_size=3)
    with torch.no_grad():
        logits = peft_model(**probe).logits
    peft_model.save_pretrained(tmp_path / "adapter")
    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert any(key.endswith("classifier.weight") for key in saved)
    assert any(".cls_norm." in key and key.endswith("weight") for key in saved)
    assert any(key.endswith("running_var") for key in saved) == (cls_norm == "batch")
    base = SepNormViTMAEForImageClassification.from_pretrained(tmp_path / "base")
    reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.equal(reloaded(**probe).logits, logits)


@pytest.mark.parametrize(
    ("model_class", "config", "trained_head"),
    [
        (SepNormBertForSequenceClassification, tiny_bert_config(), ["classifier"]),
        (SepNormBertForTokenClassification, tiny_bert_config(), ["classifier"]),
        (SepNormBertForQuestionAnswering, tiny_bert_config(), ["qa_outputs"]),
        (SepNormBertForMaskedLM, tiny_bert_config(), []),
        (SepNormBertModel, tiny_bert_config(cls_norm="rms"), []),
        (SepNormViTMAEModel, tiny_vit_mae_config(), []),
        (SepNormViTMAEForImageClassification, tiny_vit_mae_config(), ["classifier"]),
        (SepNormRobertaForSequenceClassification, tiny_roberta_config(), ["classifier"]),
        (SepNormRobertaForTokenClassification, tiny_roberta_config(cls_norm="layer"), ["classifier"]),
        # ModernBERT's classifier is `head` (dense, activation, norm) + `classifier`: both new, both trained
        (SepNormModernBertForSequenceClassification, sepnorm_config("sepnorm_modernbert"), ["head", "classifier"]),
        (SepNormDinov2ForImageClassification, sepnorm_config("sepnorm_dinov2"), ["classifier"]),
    ],
)
def test_every_head_trains_lora_its_cls_norms_and_its_new_head(model_class, config, trained_head):
    model = model_class(config)
    cls_norm_parameters = sum(1 for name, _ in model.named_parameters() if ".cls_norm." in name)
    model = apply_peft(model, LORA)
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert {name.split(".")[-4] for name in trainable if ".lora_" in name} == set(default_lora_target_modules(model))
    assert sum(1 for name in trainable if ".cls_norm.modules_to_save." in name) == cls_norm_parameters > 0
    heads = {name.split(".")[2] for name in trainable if ".lora_" not in name and ".cls_norm." not in name}
    assert heads == set(trained_head)


def test_shared_norms_get_lora_only():
    model = apply_peft(SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="shared")), LORA)
    assert model.peft_config["default"].modules_to_save.count("cls_norm") == 0


def test_model_of_no_family_needs_its_target_modules():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=99, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    with pytest.raises(ValueError, match="--lora_target_modules"):
        apply_peft(DistilBertForSequenceClassification(config), LORA)
    model = apply_peft(
        DistilBertForSequenceClassification(config), PeftArguments(use_peft=True, lora_target_modules=["q_lin"])
    )
    assert any(".q_lin.lora_A." in name for name, _ in model.named_parameters())
    assert apply_peft(model.get_base_model(), PeftArguments()) is model.get_base_model()  # use_peft false: unchanged
    with pytest.raises(ValueError, match="already has PEFT adapters"):
        apply_peft(model, LORA)


ADAPTER_FROM_HUB_WITHOUT_PACKAGE = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    import torch
    from peft import AutoPeftModelForSequenceClassification
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    repo_id, out_file, probes, snippet_file = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    model = AutoPeftModelForSequenceClassification.from_pretrained(repo_id, trust_remote_code=True).eval()
    base_repo = model.peft_config["default"].base_model_name_or_path
    tokenizer = AutoTokenizer.from_pretrained(base_repo, trust_remote_code=True)
    card = {}
    exec(open(snippet_file).read(), card)  # the adapter card's usage snippet
    with torch.no_grad():
        logits = model(**tokenizer(probes, padding=True, return_tensors="pt")).logits
        from_card = card["model"](**tokenizer(probes, padding=True, return_tensors="pt")).logits
        merged = card["merged"](**tokenizer(probes, padding=True, return_tensors="pt")).logits
    save_file({"logits": logits, "from_card": from_card, "merged": merged}, out_file)
    """
)


@pytest.mark.slow
def test_adapter_pushed_to_the_hub_names_its_sepnorm_base(hub_server, tmp_path):  # noqa: F811
    from test_hub_push import build_tokenizer

    base_repo, adapter_repo = f"{TEST_USER}/tiny-sepnorm-base", f"{TEST_USER}/tiny-sepnorm-lora"
    tokenizer = build_tokenizer()
    base = SepNormBertForSequenceClassification(tiny_bert_config(vocab_size=len(tokenizer)))
    base.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    push_to_hub(tmp_path / "base", base_repo)

    model = apply_peft(SepNormBertForSequenceClassification.from_pretrained(base_repo), LORA)
    train_lora(model, tokenizer, tmp_path / "run", steps=2)
    with pytest.raises(ValueError, match="not a Hub repo id"):
        push_adapter_to_hub(apply_peft(SepNormBertModel.from_pretrained(tmp_path / "base"), LORA), adapter_repo)
    assert adapter_repo not in hub_server.repos
    commit = push_adapter_to_hub(model, adapter_repo)

    files = hub_server.files(adapter_repo, commit.oid)
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(files)
    card = ModelCard(files["README.md"].decode())
    assert card.data.base_model == base_repo
    assert card.data.library_name == "peft" and card.data.base_model_relation == "adapter"
    assert "sepnorm" in card.data.tags
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == base_repo
    assert "More Information Needed" not in card.text  # peft's empty template: what it carries is said instead
    assert "`cls_norm`" in card.text or ".cls_norm`" in card.text, card.text  # saved whole, with their statistics
    assert "with their BatchNorm running statistics" in card.text
    (snippet,) = re.findall(r"```python\n(.*?)```", card.text, flags=re.DOTALL)
    (tmp_path / "snippet.py").write_text(snippet)

    model.eval()
    with torch.no_grad():
        logits = model(**tokenizer(PROBES, padding=True, return_tensors="pt")).logits
    result = subprocess.run(
        [sys.executable, "-c", ADAPTER_FROM_HUB_WITHOUT_PACKAGE, adapter_repo, str(tmp_path / "out.st"),
         json.dumps(PROBES), str(tmp_path / "snippet.py")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "HF_HOME": str(tmp_path / "fresh_home"), "HF_MODULES_CACHE": str(tmp_path / "modules")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = load_file(tmp_path / "out.st")
    assert torch.equal(reloaded["logits"], logits)
    # the snippet merges the adapter in place: its model and its merged model compute the merged weights
    torch.testing.assert_close(reloaded["from_card"], logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(reloaded["merged"], logits, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_two_process_run_glue_trains_an_adapter_with_synchronized_cls_norms(minilm_base, data_dir, tmp_path):
    """`--use_peft` in run_glue under two processes: the [CLS] norms the adapter trains are the ones converted to
    `ClsSyncBatchNorm`, every rank ends identical, and the saved adapter reloads on the base."""
    output_dir = tmp_path / "lora"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--main_process_port", str(port),
        "--config_file", str(EXAMPLES / "accelerate" / "cpu_2proc.yaml"), str(EXAMPLES / "run_glue.py"),
        "--use_cpu", "true", "--output_dir", str(output_dir), "--report_to", "none", "--disable_tqdm", "true",
        "--model_name_or_path", str(minilm_base), "--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"),
        "--do_train", "--max_steps", "2", "--max_train_samples", "64", "--per_device_train_batch_size", "4",
        "--max_seq_length", "32", "--use_peft", "true", "--lora_r", "4",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert [entry for entry in state["log_history"] if "ranks_verified_identical" in entry] == [
        {"ranks_verified_identical": 2, "step": 2}
    ]
    saved = load_file(output_dir / "adapter_model.safetensors")
    batches_tracked = [v.item() for k, v in saved.items() if k.endswith("cls_norm.num_batches_tracked")]
    assert len(batches_tracked) == 12 and set(batches_tracked) != {0}
    model = PeftModel.from_pretrained(SepNormBertForSequenceClassification.from_pretrained(minilm_base), output_dir)
    for name, tensor in model.state_dict().items():
        if ".cls_norm.modules_to_save." in name:
            assert torch.equal(tensor, saved[name.replace(".modules_to_save.default.", ".")]), name
    card = ModelCard.load(output_dir / "README.md")  # the SepNorm adapter card, over peft's metadata
    assert card.data.library_name == "peft" and "sepnorm" in card.data.tags
    assert "with their BatchNorm running statistics" in card.text
    # a local base is no Hub id: the card's snippet leaves a form to fill and names no path of this machine
    assert 'from_pretrained("<your-namespace>/<base-repo>"' in card.text and str(minilm_base) not in str(card)


def test_an_adapter_on_a_stock_checkpoint_converted_in_memory_is_refused_with_the_fix(minilm_dir, tmp_path):
    """Its adapter would name the stock folder as its base: AutoPeftModel... would rebuild a stock BERT, where the
    trained [CLS] norms have nowhere to go. Converted to a folder first, the adapter names that folder."""
    in_memory = convert_stock_checkpoint(minilm_dir, model_class=SepNormBertForSequenceClassification,
                                         allow_new_head=True, cls_norm="batch")  # fmt: skip
    with pytest.raises(ValueError, match=r"in memory.*hf-sepnorm convert .* converted --cls_norm batch --uncalibrated"):
        apply_peft(in_memory, LORA)
    saved = convert_stock_checkpoint(minilm_dir, tmp_path / "converted", model_class=SepNormBertForSequenceClassification,
                                     allow_new_head=True, cls_norm="batch")  # fmt: skip
    assert apply_peft(saved, LORA).peft_config["default"].base_model_name_or_path == str(tmp_path / "converted")


def test_an_adapter_reloads_by_itself_as_the_model_that_was_trained(trained_adapter):
    """`AutoPeftModelForSequenceClassification.from_pretrained(adapter)` finds the SepNorm base it names."""
    from peft import AutoPeftModelForSequenceClassification

    reloaded = AutoPeftModelForSequenceClassification.from_pretrained(trained_adapter["dir"]).eval()
    assert type(reloaded.get_base_model()) is SepNormBertForSequenceClassification
    with torch.no_grad():
        assert torch.equal(reloaded(**trained_adapter["probes"]).logits, trained_adapter["logits"])
