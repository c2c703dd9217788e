"""Checkpoints saved with the newest transformers release (the installed one) load and train under the lowest one
supported (the version check's lower bound, the same as setup.cfg's), with `trust_remote_code=True` in a process
where hf_sepnorm cannot be imported: every family and head, outputs and gradients equal to those of the process that
saved them.

The lowest release runs from a venv built once and cached in
`~/.cache/hf_sepnorm/venv-transformers-<version>-kernels/` (`$XDG_CACHE_HOME/hf_sepnorm/` when set; see
tests/release_venvs.py): pip installs there transformers and what it
pins (huggingface_hub 1.x, tokenizers, and kernels, which transformers imports whenever it is installed); every
other package is the running interpreter's. Skipped, saying why, when it cannot be built (no network)."""

import json
import os
import subprocess
import textwrap

import pytest
import torch
import transformers
from family_checkpoints import inputs_for, preprocessor_for, sepnorm_config
from release_venvs import create_venv, python_with_transformers, running_site_packages
from safetensors.torch import save_file
from without_package import BLOCK_HF_SEPNORM

from hf_sepnorm import FAMILIES
from hf_sepnorm.remote_code.configuration_sepnorm import REQUIRED_VERSIONS

LOWEST, _ = REQUIRED_VERSIONS["transformers"]


def first_output(output) -> torch.Tensor:
    """A head's first output: logits, hidden states or the MAE loss; a backbone's last feature map."""
    first = output[0]
    return first[-1] if isinstance(first, tuple) else first


def training_loss(output) -> torch.Tensor:
    """A loss of every head's first output: what one backward step needs."""
    return first_output(output).float().square().mean()


def head_inputs(model_type: str, auto_class: str) -> dict[str, torch.Tensor]:
    inputs = inputs_for(model_type)
    if auto_class == "AutoModelForMultipleChoice":  # (batch, choices, sequence)
        inputs = {name: tensor.unsqueeze(1).expand(-1, 2, -1).contiguous() for name, tensor in inputs.items()}
    if model_type == "sepnorm_vit_mae" and auto_class != "AutoModelForImageClassification":
        inputs["noise"] = torch.rand(4, 16)  # the same random masking in both processes
    return inputs


def save_newest_checkpoints(root) -> list[str]:
    """Every head of every family, `cls_norm="batch"`, saved with the inputs, the eval outputs and the gradients of
    one training step that the newest release gives; returns the checkpoint folders' names."""
    names = []
    for family in FAMILIES.values():
        for auto_class, model_class in family.heads.items():
            name = f"{model_class.__name__}-{auto_class}"
            model = model_class(sepnorm_config(family.model_type, num_labels=2, cls_norm="batch"))
            inputs = head_inputs(family.model_type, auto_class)
            model.train()(**inputs)  # running statistics away from their initial values
            model.save_pretrained(root / name)
            # reloaded, as the other process will (from_pretrained leaves ViT-MAE's fixed position embeddings trainable)
            model = model_class.from_pretrained(root / name)
            with torch.no_grad():
                output = first_output(model.eval()(**inputs))
            training_loss(model.train()(**inputs)).backward()
            gradients = {f"grad.{key}": p.grad for key, p in model.named_parameters() if p.grad is not None}
            if family.card_section == "text" and auto_class == "AutoModel":  # the tokenizer a pipeline loads too
                tokenizer = preprocessor_for(family.model_type)
                tokenizer.save_pretrained(root / name)
                texts = tokenizer.batch_decode(inputs["input_ids"], skip_special_tokens=True)
                (root / name / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
            inputs = {f"input.{key}": tensor for key, tensor in inputs.items()}
            save_file({**inputs, "output": output.contiguous(), **gradients}, root / name / "expected.safetensors")
            names.append(name)
    return names


LOAD_AND_TRAIN = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    import os
    import torch, transformers
    from safetensors.torch import load_file

    def first_output(output):  # a backbone's first output is its tuple of feature maps: the last one
        first = output[0]
        return first[-1] if isinstance(first, tuple) else first

    def training_loss(output):
        return first_output(output).float().square().mean()

    def load(folder, auto_class_name):
        if auto_class_name != "AutoBackbone":
            auto_class = getattr(transformers, auto_class_name)
            return auto_class.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
        # AutoBackbone.from_pretrained takes only Hub ids (a folder is refused as a repo id): its remote class,
        # loaded from the folder's auto_map as AutoBackbone would
        from transformers.dynamic_module_utils import get_class_from_dynamic_module

        config = transformers.AutoConfig.from_pretrained(folder, trust_remote_code=True)
        model_class = get_class_from_dynamic_module(config.auto_map["AutoBackbone"], folder)
        return model_class.from_pretrained(folder, output_loading_info=True)

    def cls_batchnorms(model):
        return [module for module in model.modules() if type(module).__name__ == "ClsBatchNorm"]

    def max_difference(gradients, expected):
        return max((gradients[key] - expected["grad." + key]).abs().max().item() for key in gradients)

    results = {"transformers": transformers.__version__}
    for name in sys.argv[2:]:
        folder = os.path.join(sys.argv[1], name)
        expected = load_file(os.path.join(folder, "expected.safetensors"))
        inputs = {key[len("input."):]: value for key, value in expected.items() if key.startswith("input.")}
        try:
            model, info = load(folder, name.rsplit("-", 1)[1])
        except ImportError as error:  # a family that needs a later release than the package's lowest says so
            results[name] = {"error": str(error)}
            continue
        with torch.no_grad():
            output = first_output(model.eval()(**inputs))
        training_loss(model.train()(**inputs)).backward()
        gradients = {key: p.grad.clone() for key, p in model.named_parameters() if p.grad is not None}
        # one more step with activation checkpointing: the [CLS] statistics are updated once, not again when the
        # backward pass recomputes the layers; then the optimizer step
        model.zero_grad()
        model.gradient_checkpointing_enable()
        tracked = [norm.num_batches_tracked.item() for norm in cls_batchnorms(model)]
        training_loss(model(**inputs)).backward()
        checkpointed = {key: p.grad.clone() for key, p in model.named_parameters() if p.grad is not None}
        before = [p.detach().clone() for p in model.parameters()]
        torch.optim.SGD(model.parameters(), lr=0.1).step()
        texts_file = os.path.join(folder, "texts.json")
        if os.path.isfile(texts_file):  # the saved tokenizer gives the ids it gave
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
            ids = tokenizer(json.load(open(texts_file)), padding=True, return_tensors="pt")["input_ids"]
            results[name + ":tokenizer"] = torch.equal(ids, inputs["input_ids"])
        results[name] = {
            "class": type(model).__name__,
            "module": type(model).__module__,
            "loading_problems": {key: list(info[key]) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")
                                 if info[key]},
            "output_difference": (output - expected["output"]).abs().max().item(),
            "same_gradients": sorted(gradients) == sorted(key[len("grad."):] for key in expected if key[:5] == "grad."),
            "gradient_difference": max_difference(gradients, expected),
            "checkpointed_gradient_difference": max_difference(checkpointed, expected),
            "statistics_updates": [norm.num_batches_tracked.item() - count
                                   for norm, count in zip(cls_batchnorms(model), tracked)],
            "parameters_moved": sum(not torch.equal(old, p) for old, p in zip(before, model.parameters())),
        }
    print(json.dumps(results))
    """
)


@pytest.mark.slow
def test_the_newest_checkpoints_load_and_train_under_the_lowest_supported_release(tmp_path):
    # kernels: transformers imports it whenever it is installed, and its releases past transformers' pin break the
    # import of BERT's activations under older releases: the venv gets the kernels the lowest release pins
    python = python_with_transformers(LOWEST, extras="kernels")
    names = save_newest_checkpoints(tmp_path)
    assert len(names) == sum(len(family.heads) for family in FAMILIES.values())  # every head of every family
    assert len(names) >= 24  # BERT, RoBERTa, ModernBERT: backbone and 5 heads each; ViT-MAE, DINOv2: 3 classes each
    result = subprocess.run(
        [str(python), "-c", LOAD_AND_TRAIN, str(tmp_path), *names], capture_output=True, text=True, timeout=1200,
        cwd=tmp_path, env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results.pop("transformers") == LOWEST
    tokenized = {name: results.pop(name) for name in list(results) if name.endswith(":tokenizer")}
    assert tokenized == {f"SepNorm{family}Model-AutoModel:tokenizer": True for family in ("Bert", "Roberta", "ModernBert")}
    # DINOv2's classes changed in 5.18 (its attention projections renamed): below that its checkpoints are refused
    # in one line, and from there they load (its own tests run on the installed release)
    refused = {name: results.pop(name)["error"] for name in list(results) if name.startswith("SepNormDinov2")}
    assert len(refused) == len(FAMILIES["sepnorm_dinov2"].heads)
    for message in refused.values():
        assert message.startswith("The SepNorm DINOv2 code needs transformers>=5.18 (") and "\n" not in message
    for name, loaded in results.items():
        assert loaded["class"] == name.split("-")[0], name
        assert loaded["module"].startswith("transformers_modules."), name  # the folder's code, not a package
        assert loaded["loading_problems"] == {}, name
        assert loaded["output_difference"] == 0.0, name
        assert loaded["same_gradients"] and loaded["gradient_difference"] == 0.0, name
        assert loaded["checkpointed_gradient_difference"] < 1e-6, name
        assert loaded["statistics_updates"] and set(loaded["statistics_updates"]) == {1}, name
        assert loaded["parameters_moved"] > 0, name


def test_a_built_venv_sees_the_packages_the_suite_runs_with(tmp_path):
    """Also when the suite runs inside a venv: a `--system-site-packages` venv built from a venv's python would see
    the base interpreter's packages instead (then "AutoModel requires the PyTorch library" where torch is the venv's)."""
    python = create_venv(tmp_path / "venv", with_pip=False)
    code = "import json, sys, torch, transformers; print(json.dumps([sys.path, torch.__file__, transformers.__file__]))"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    path, torch_file, transformers_file = json.loads(result.stdout)
    assert [folder for folder in path if folder in running_site_packages()] == running_site_packages()
    assert (torch_file, transformers_file) == (torch.__file__, transformers.__file__)
