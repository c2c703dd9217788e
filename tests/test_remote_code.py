"""Saved SepNorm folders load with trust_remote_code in a fresh process where hf_sepnorm cannot be imported."""

import functools
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import bert_inputs, image_inputs, tiny_bert_config, tiny_vit_mae_config
from family_checkpoints import inputs_for, sepnorm_config
from hub_server import TEST_USER, hub_server  # noqa: F401 - `hub_server` is a fixture
from without_package import BLOCK_HF_SEPNORM
from safetensors.torch import save_file

from hf_sepnorm import (
    FAMILIES,
    SepNormBertForMaskedLM,
    SepNormBertForSequenceClassification,
    SepNormRobertaForMaskedLM,
    SepNormRobertaForSequenceClassification,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
)

LOAD_WITHOUT_PACKAGE = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    import torch, transformers
    from safetensors.torch import load_file, save_file

    folder, auto_class_name, out_file = sys.argv[1:4]
    auto_class = getattr(transformers, auto_class_name)
    model, info = auto_class.from_pretrained(folder, trust_remote_code=True, output_loading_info=True)
    assert not any(info[key] for key in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    inputs = load_file(folder + "/inputs.safetensors")
    with torch.no_grad():
        output = model.eval()(**inputs)
    save_file({"output": output[0].contiguous()}, out_file)
    print(json.dumps({"class": type(model).__name__, "module": type(model).__module__,
                      "backbone": type(model.base_model).__name__}))
    """
)


def load_in_fresh_process(folder, auto_class_name, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_PACKAGE, str(folder), auto_class_name, str(tmp_path / "out.safetensors")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    from safetensors.torch import load_file

    return json.loads(result.stdout.strip().splitlines()[-1]), load_file(tmp_path / "out.safetensors")["output"]


def tiny_roberta_config(**overrides):
    return sepnorm_config("sepnorm_roberta", **overrides)


def roberta_inputs(batch_size: int = 4):
    return inputs_for("sepnorm_roberta", batch_size)


CASES = [
    (SepNormBertForSequenceClassification, tiny_bert_config, bert_inputs, "AutoModelForSequenceClassification"),
    (SepNormBertForMaskedLM, tiny_bert_config, bert_inputs, "AutoModelForMaskedLM"),
    (
        SepNormRobertaForSequenceClassification,
        tiny_roberta_config,
        roberta_inputs,
        "AutoModelForSequenceClassification",
    ),
    (SepNormRobertaForMaskedLM, tiny_roberta_config, roberta_inputs, "AutoModelForMaskedLM"),
    (SepNormViTMAEForImageClassification, tiny_vit_mae_config, image_inputs, "AutoModelForImageClassification"),
    (SepNormViTMAEForPreTraining, tiny_vit_mae_config, image_inputs, "AutoModelForPreTraining"),
    *(  # the families added later, from the registry: their sequence / image classifier and base model
        (FAMILIES[model_type].heads[auto_class_name], functools.partial(sepnorm_config, model_type),
         functools.partial(inputs_for, model_type), auto_class_name)
        for model_type, auto_class_name in (
            ("sepnorm_modernbert", "AutoModelForSequenceClassification"), ("sepnorm_modernbert", "AutoModelForMaskedLM"),
            ("sepnorm_dinov2", "AutoModelForImageClassification"), ("sepnorm_dinov2", "AutoModel"),
        )
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    "model_class, make_config, make_inputs, auto_class_name", CASES, ids=[case[0].__name__ for case in CASES]
)
@pytest.mark.slow
def test_remote_code_gives_bit_identical_outputs(tmp_path, model_class, make_config, make_inputs, auto_class_name):
    model = model_class(make_config(num_labels=3)).train()
    model(**make_inputs(batch_size=8))  # running statistics away from their initial values
    model.eval()
    folder = tmp_path / "checkpoint"
    model.save_pretrained(folder)
    inputs = make_inputs()
    if model_class is SepNormViTMAEForPreTraining:
        inputs["noise"] = torch.rand(4, 16)
    save_file(inputs, folder / "inputs.safetensors")
    with torch.no_grad():
        expected = model(**inputs)[0]

    loaded, output = load_in_fresh_process(folder, auto_class_name, tmp_path)
    assert loaded["class"] == model_class.__name__
    assert loaded["module"].startswith("transformers_modules.")
    assert loaded["backbone"] == type(model.base_model).__name__
    assert torch.equal(output, expected)


def test_with_the_package_installed_a_pushed_checkpoint_loads_as_the_packages_classes(hub_server):  # noqa: F811
    """What docs/models.md says of several processes: loaded by repo id with trust_remote_code=True while hf_sepnorm
    is installed, a checkpoint's classes are the package's, so SepNormTrainer finds its [CLS] BatchNorms (and
    synchronizes them) as it does for a model the package built."""
    from transformers import AutoModelForSequenceClassification

    from hf_sepnorm.cls_norms import cls_batchnorms
    from hf_sepnorm.training import convert_cls_batchnorm_to_sync

    repo_id = f"{TEST_USER}/tiny-sepnorm-bert-package-classes"
    sha = SepNormBertForSequenceClassification(tiny_bert_config(cls_norm="batch")).push_to_hub(repo_id).oid
    loaded = AutoModelForSequenceClassification.from_pretrained(repo_id, revision=sha, trust_remote_code=True)
    assert type(loaded) is SepNormBertForSequenceClassification
    assert len(cls_batchnorms(loaded)) == 4 and convert_cls_batchnorm_to_sync(loaded) == 4
