"""transformers pipelines on SepNorm models: `pipeline(task, model=..., trust_remote_code=True)` for every head, from a
local folder and by repo id from (a local server of) the Hub, and in a process where hf_sepnorm cannot be imported.

The models are tiny and random, with the real all-MiniLM-L6-v2 tokenizer or a ViT image processor saved next to them;
each pipeline's answer is checked against the model's own output for the same input.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import tiny_bert_config, tiny_vit_mae_config
from hub_server import TEST_USER, hub_server  # noqa: F401 - `hub_server` is a fixture
from PIL import Image
from transformers import AutoTokenizer, ViTImageProcessor, pipeline
from without_package import BLOCK_HF_SEPNORM

from hf_sepnorm import (
    SepNormBertForMaskedLM,
    SepNormBertForQuestionAnswering,
    SepNormBertForSequenceClassification,
    SepNormBertForTokenClassification,
    SepNormBertModel,
    SepNormViTMAEForImageClassification,
    SepNormViTMAEForPreTraining,
    SepNormViTMAEModel,
)

LABELS = {"id2label": {0: "negative", 1: "positive", 2: "neutral"}}
TEXT = "the film was good and the actors were great"

# task -> (head class, family, config fields); ViT-MAE features come from every patch in place (mask_ratio 0)
HEADS = {
    "fill-mask": (SepNormBertForMaskedLM, "bert", {}),
    "text-classification": (SepNormBertForSequenceClassification, "bert", LABELS),
    "token-classification": (SepNormBertForTokenClassification, "bert", LABELS),
    "feature-extraction": (SepNormBertModel, "bert", {}),
    "image-classification": (SepNormViTMAEForImageClassification, "vit_mae", LABELS),
    "image-feature-extraction": (SepNormViTMAEModel, "vit_mae", {"mask_ratio": 0.0}),
}


def image() -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return AutoTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def folders(tokenizer, tmp_path_factory):
    """One saved folder per task: a tiny SepNorm model with [CLS] BatchNorms and its tokenizer / image processor."""
    saved = {}
    for task, (model_class, family, fields) in HEADS.items():
        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp(task)
        if family == "bert":
            config = tiny_bert_config(vocab_size=tokenizer.vocab_size, max_position_embeddings=128, **fields)
            model_class(config).save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        else:
            model_class(tiny_vit_mae_config(**fields)).save_pretrained(folder)
            ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
        saved[task] = folder
    return saved


def pipeline_inputs(task: str) -> tuple[tuple, dict]:
    return {
        "fill-mask": (("the film was [MASK] and the actors were great",), {"top_k": 3}),
        "text-classification": ((TEXT,), {"top_k": None}),
        "token-classification": ((TEXT,), {"ignore_labels": []}),
        "feature-extraction": ((TEXT,), {}),
        "image-classification": ((image(),), {"top_k": 3}),
        "image-feature-extraction": ((image(),), {}),
    }[task]


def check_against_model(task: str, pipe, output) -> None:
    """The pipeline's answer is what its model computes for the same input."""
    model = pipe.model
    assert type(model).__name__ == HEADS[task][0].__name__
    assert not model.training
    args, kwargs = pipeline_inputs(task)
    if pipe.tokenizer is not None:
        inputs = pipe.tokenizer(args[0], return_tensors="pt")
    else:
        inputs = pipe.image_processor(args[0], return_tensors="pt")
    with torch.no_grad():
        model_output = model(**inputs)
    if task == "fill-mask":
        mask_position = (inputs["input_ids"][0] == pipe.tokenizer.mask_token_id).nonzero().item()
        top = model_output.logits[0, mask_position].softmax(-1).topk(3)
        assert [answer["token"] for answer in output] == top.indices.tolist()
        np.testing.assert_allclose([answer["score"] for answer in output], top.values.numpy(), rtol=1e-5)
    elif task in ("text-classification", "image-classification"):
        probabilities = model_output.logits[0].softmax(-1)
        for answer in output:
            label_id = {label: i for i, label in model.config.id2label.items()}[answer["label"]]
            assert answer["score"] == pytest.approx(probabilities[label_id].item(), rel=1e-5)
    elif task == "token-classification":
        predicted = model_output.logits[0].argmax(-1)[1:-1]  # the pipeline skips [CLS] and [SEP]
        assert [answer["entity"] for answer in output] == [model.config.id2label[i.item()] for i in predicted]
    elif task in ("feature-extraction", "image-feature-extraction"):
        features = np.asarray(output)
        expected = model_output.last_hidden_state.numpy()
        assert features.shape == expected.shape
        np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task", HEADS)
def test_pipeline_from_a_local_folder(task, folders):
    pipe = pipeline(task, model=str(folders[task]), trust_remote_code=True)
    args, kwargs = pipeline_inputs(task)
    output = pipe(*args, **kwargs)
    check_against_model(task, pipe, output)
    assert pipe(*args, **kwargs) == output  # deterministic in eval


def test_image_features_see_every_patch_in_place(tmp_path):
    """MAE pretraining masks 75 % of the patches at random, and so does the stock ViTMAEModel in eval: features for
    downstream use load the encoder with mask_ratio 0, which then sees every patch in place, every time."""
    pretrained = SepNormViTMAEForPreTraining(tiny_vit_mae_config())
    pretrained.save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    config = pretrained.config
    num_patches = (config.image_size // config.patch_size) ** 2

    masked = pipeline("image-feature-extraction", model=str(tmp_path), trust_remote_code=True)
    assert type(masked.model).__name__ == "SepNormViTMAEModel"
    assert np.asarray(masked(image())).shape == (1, 1 + num_patches // 4, config.hidden_size)

    pipe = pipeline("image-feature-extraction", model=str(tmp_path), trust_remote_code=True,
                    model_kwargs={"mask_ratio": 0.0})  # fmt: skip
    features = np.asarray(pipe(image()))
    assert features.shape == (1, 1 + num_patches, config.hidden_size)
    # the patches in place: what the pretrained encoder computes with the identity permutation as noise
    pretrained.eval()
    pretrained.vit.embeddings.config = pipe.model.config
    with torch.no_grad():
        expected = pretrained.vit(**pipe.image_processor(image(), return_tensors="pt"),
                                  noise=torch.arange(num_patches)[None]).last_hidden_state  # fmt: skip
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_question_answering_has_no_pipeline_in_transformers_5(tmp_path):
    """transformers 5 removed the extractive question-answering pipeline, for its own BERT as for SepNorm's: the
    `...ForQuestionAnswering` heads are used directly (start/end logits)."""
    SepNormBertForQuestionAnswering(tiny_bert_config()).save_pretrained(tmp_path)
    with pytest.raises(KeyError, match="question-answering has been removed from transformers"):
        pipeline("question-answering", model=str(tmp_path), trust_remote_code=True)


@pytest.fixture
def pushed(hub_server, folders):  # noqa: F811
    """Every folder pushed to the local Hub with transformers' own `push_to_hub`: repo id -> (task, commit sha)."""
    repos = {}
    for task, folder in folders.items():
        model_class, family, _ = HEADS[task]
        repo_id = f"{TEST_USER}/tiny-sepnorm-{task}"
        model_class.from_pretrained(folder).push_to_hub(repo_id)
        processor = AutoTokenizer if family == "bert" else ViTImageProcessor
        commit = processor.from_pretrained(folder).push_to_hub(repo_id)
        repos[task] = (repo_id, commit.oid)
    return repos


def check_pipelines_by_repo_id(pushed) -> None:
    for task, (repo_id, sha) in pushed.items():
        pipe = pipeline(task, model=repo_id, revision=sha, trust_remote_code=True)
        args, kwargs = pipeline_inputs(task)
        check_against_model(task, pipe, pipe(*args, **kwargs))


PIPELINES_WITHOUT_PACKAGE = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    import numpy as np
    from PIL import Image
    from transformers import pipeline

    results = {}
    for task, repo_id, sha in json.loads(sys.argv[1]):
        pipe = pipeline(task, model=repo_id, revision=sha, trust_remote_code=True)
        if task.startswith("image"):
            pixels = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
            results[task] = {"class": type(pipe.model).__name__, "output": pipe(Image.fromarray(pixels), top_k=3)}
        else:
            results[task] = {"class": type(pipe.model).__name__, "output": pipe(sys.argv[2], top_k=None)}
    print(json.dumps(results))
    """
)


@pytest.mark.slow
def test_pipelines_by_repo_id_from_the_hub_with_and_without_the_package(pushed, tmp_path):
    """In a process where hf_sepnorm cannot be imported, the pipelines run the repo's code and answer the same."""
    check_pipelines_by_repo_id(pushed)
    tasks = ["text-classification", "image-classification"]
    result = subprocess.run(
        [sys.executable, "-c", PIPELINES_WITHOUT_PACKAGE, json.dumps([(t, *pushed[t]) for t in tasks]), TEXT],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "HF_HOME": str(tmp_path / "fresh_home"), "HF_MODULES_CACHE": str(tmp_path / "modules")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    for task in tasks:
        assert results[task]["class"] == HEADS[task][0].__name__
        in_process = pipeline(task, model=pushed[task][0], revision=pushed[task][1], trust_remote_code=True)
        args, kwargs = pipeline_inputs(task)
        expected = in_process(*args, **kwargs)
        assert [a["label"] for a in results[task]["output"]] == [a["label"] for a in expected]
        np.testing.assert_allclose([a["score"] for a in results[task]["output"]], [a["score"] for a in expected])


# ---- the families added after the table above, from a local folder (the same code paths by repo id) ----


@pytest.mark.parametrize(
    "model_type, task, head",
    [
        ("sepnorm_modernbert", "fill-mask", "AutoModelForMaskedLM"),
        ("sepnorm_modernbert", "text-classification", "AutoModelForSequenceClassification"),
        ("sepnorm_dinov2", "image-classification", "AutoModelForImageClassification"),
        ("sepnorm_dinov2", "image-feature-extraction", "AutoModel"),
    ],
)
def test_pipelines_of_the_newer_families_answer_what_their_model_computes(model_type, task, head, tmp_path):
    from family_checkpoints import save_sepnorm_checkpoint

    from hf_sepnorm import FAMILIES

    model_class = FAMILIES[model_type].heads[head]
    folder = save_sepnorm_checkpoint(model_class, tmp_path, **(LABELS if "classification" in task else {}))
    pipe = pipeline(task, model=str(folder), trust_remote_code=True)
    assert type(pipe.model).__name__ == model_class.__name__ and not pipe.model.training
    if task.startswith("image"):
        inputs = pipe.image_processor(image(), return_tensors="pt")
        output = pipe(image(), **({"top_k": 3} if task == "image-classification" else {}))
    else:
        text = "sepnorm gives the [MASK] a norm" if task == "fill-mask" else "sepnorm gives a norm"
        inputs = pipe.tokenizer(text, return_tensors="pt")
        output = pipe(text, top_k=3 if task == "fill-mask" else None)
    with torch.no_grad():
        model_output = pipe.model(**inputs)
    if task == "fill-mask":
        position = (inputs["input_ids"][0] == pipe.tokenizer.mask_token_id).nonzero().item()
        expected = model_output.logits[0, position].softmax(-1).topk(3)
        assert [answer["token"] for answer in output] == expected.indices.tolist()
    elif task.endswith("classification"):
        best = model_output.logits[0].softmax(-1).argmax().item()
        assert output[0]["label"] == LABELS["id2label"][best]
    else:
        np.testing.assert_allclose(np.array(output)[0], model_output.last_hidden_state[0].numpy(), rtol=1e-5, atol=1e-6)
