"""ONNX export (`torch.onnx.export(dynamo=True)`, the route docs/onnx.md documents), checked against onnxruntime on
other shapes than the export's: every input the model takes (BERT's `token_type_ids` included) and named outputs, on
sentence pairs and padded batches, for each text head of the BERT family, a RoBERTa classifier and the ViT-MAE
classifier. An eval-mode [CLS] BatchNorm is a fixed affine map of its running statistics: the graph needs no batch."""

import numpy as np
import pytest
import torch
from conftest import image_inputs, tiny_bert_config, tiny_vit_mae_config
from test_hub_push import build_tokenizer as build_single_sentence_tokenizer
from tokenizers import processors

from hf_sepnorm import (
    SepNormBertForMaskedLM,
    SepNormBertForMultipleChoice,
    SepNormBertForQuestionAnswering,
    SepNormBertForSequenceClassification,
    SepNormBertForTokenClassification,
    SepNormBertModel,
    SepNormRobertaConfig,
    SepNormRobertaForSequenceClassification,
    SepNormViTMAEForImageClassification,
)

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is a test extra: pip install -e '.[test]'")
pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript (a test extra)")

FIRST = ["SepNorm gives the first token a norm of its own.", "A short one."]
SECOND = ["Which token?", "The [CLS] token, normalized apart from the other tokens of the sequence."]
OTHER_FIRST = ["Three pairs now.", "Batch statistics are not used in eval mode.", "x"]
OTHER_SECOND = ["Longer than the export's example, to change the sequence length too.", "Padded.", "y z"]


def build_tokenizer():
    """A BERT WordPiece tokenizer that frames pairs as BERT's does: [CLS] A [SEP] B [SEP], B with token type 1."""
    tokenizer = build_single_sentence_tokenizer()
    special = [(token, tokenizer.convert_tokens_to_ids(token)) for token in ("[CLS]", "[SEP]")]
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=special
    )
    tokenizer.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]  # as BERT's tokenizer gives them
    return tokenizer


def with_trained_looking_statistics(model):
    """Mean 0 / variance 1 would hide a normalization the graph left out."""
    with torch.no_grad():
        for norm in (module for module in model.modules() if isinstance(module, torch.nn.BatchNorm1d)):
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
            norm.num_batches_tracked += 10
    return model.eval()


def export(model, inputs: dict[str, torch.Tensor], path, dims: dict[int, str]) -> list[str]:
    """docs/onnx.md's export: every input by name, with its dynamic axes, and the outputs named as the model names
    them. Returns the output names."""
    with torch.no_grad():
        output_names = list(model(**inputs).keys())  # e.g. ["logits"], or ["last_hidden_state", "pooler_output"]
    axes = {axis: torch.export.Dim(name) for axis, name in dims.items()}
    torch.onnx.export(model, (), str(path), kwargs=inputs, dynamo=True, input_names=list(inputs),
                      output_names=output_names, dynamic_shapes={name: axes for name in inputs})  # fmt: skip
    return output_names


def check_against_onnxruntime(model, path, inputs: dict[str, torch.Tensor], output_names: list[str]) -> None:
    session = onnxruntime.InferenceSession(str(path))
    assert [node.name for node in session.get_inputs()] == list(inputs)  # none dropped
    assert [node.name for node in session.get_outputs()] == output_names
    exported = session.run(None, {name: tensor.numpy() for name, tensor in inputs.items()})
    with torch.no_grad():
        expected = model(**inputs)
    for name, array in zip(output_names, exported):
        assert array.shape == tuple(expected[name].shape), name
        np.testing.assert_allclose(array, expected[name].numpy(), atol=1e-5, rtol=1e-4, err_msg=name)


TEXT_HEADS = [SepNormBertModel, SepNormBertForMaskedLM, SepNormBertForSequenceClassification,
              SepNormBertForTokenClassification, SepNormBertForQuestionAnswering]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("model_class", TEXT_HEADS, ids=lambda cls: cls.__name__)
def test_each_bert_head_exports_with_every_input_and_named_outputs(model_class, tmp_path):
    tokenizer = build_tokenizer()
    config = tiny_bert_config(vocab_size=len(tokenizer), type_vocab_size=2)
    model = with_trained_looking_statistics(model_class(config))
    example = dict(tokenizer(FIRST, SECOND, padding=True, return_tensors="pt"))  # sentence pairs, padded
    assert set(example) == {"input_ids", "token_type_ids", "attention_mask"}

    output_names = export(model, example, tmp_path / "model.onnx", {0: "batch", 1: "sequence"})

    assert output_names == {SepNormBertModel: ["last_hidden_state", "pooler_output"],
                            SepNormBertForQuestionAnswering: ["start_logits", "end_logits"]}.get(model_class, ["logits"])
    other = dict(tokenizer(OTHER_FIRST, OTHER_SECOND, padding=True, return_tensors="pt"))
    assert other["token_type_ids"].any() and not other["attention_mask"].all()
    check_against_onnxruntime(model, tmp_path / "model.onnx", other, output_names)
    single = dict(tokenizer(["One sentence alone."], return_tensors="pt"))  # batch 1, no pair
    check_against_onnxruntime(model, tmp_path / "model.onnx", single, output_names)


@pytest.mark.slow
def test_the_multiple_choice_head_exports_with_its_choices_axis(tmp_path):
    tokenizer = build_tokenizer()
    model = with_trained_looking_statistics(
        SepNormBertForMultipleChoice(tiny_bert_config(vocab_size=len(tokenizer), type_vocab_size=2))
    )

    def choices(prompts, endings):  # (questions, choices, sequence)
        encoded = tokenizer([p for p in prompts for _ in endings], endings * len(prompts), padding=True,
                            truncation=True, max_length=48, return_tensors="pt")  # within max_position_embeddings
        return {name: tensor.view(len(prompts), len(endings), -1) for name, tensor in encoded.items()}

    output_names = export(model, choices(FIRST, SECOND), tmp_path / "model.onnx",
                          {0: "batch", 1: "choices", 2: "sequence"})  # fmt: skip
    assert output_names == ["logits"]
    check_against_onnxruntime(model, tmp_path / "model.onnx", choices(OTHER_FIRST, OTHER_SECOND), output_names)


@pytest.mark.slow
def test_a_roberta_classifier_exports_the_inputs_its_tokenizer_gives(tmp_path):
    tokenizer = build_tokenizer()
    config = SepNormRobertaConfig(**{**tiny_bert_config(vocab_size=len(tokenizer) + 2).to_dict(), "pad_token_id": 1,
                                     "model_type": "sepnorm_roberta"})  # fmt: skip
    model = with_trained_looking_statistics(SepNormRobertaForSequenceClassification(config))
    example = dict(tokenizer(FIRST, SECOND, padding=True, return_tensors="pt"))
    output_names = export(model, example, tmp_path / "model.onnx", {0: "batch", 1: "sequence"})
    other = dict(tokenizer(OTHER_FIRST, OTHER_SECOND, padding=True, return_tensors="pt"))
    check_against_onnxruntime(model, tmp_path / "model.onnx", other, output_names)


@pytest.mark.slow
def test_the_vit_mae_classifier_exports_with_a_dynamic_batch(tmp_path):
    model = with_trained_looking_statistics(SepNormViTMAEForImageClassification(tiny_vit_mae_config(num_labels=3)))
    output_names = export(model, image_inputs(batch_size=2), tmp_path / "model.onnx", {0: "batch"})
    assert output_names == ["logits"]
    for batch_size in (1, 5):
        check_against_onnxruntime(model, tmp_path / "model.onnx", image_inputs(batch_size=batch_size), output_names)
