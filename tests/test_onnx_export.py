"""ONNX export (`torch.onnx.export(dynamo=True)`, the route README documents), checked against onnxruntime on other
shapes than the export's: an eval-mode [CLS] BatchNorm is a fixed affine map of its running statistics."""

import numpy as np
import pytest
import torch
from conftest import bert_inputs, tiny_bert_config

from hf_sepnorm import SepNormBertForSequenceClassification, SepNormBertModel

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is a test extra: pip install -e '.[test]'")
pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript (a test extra)")


@pytest.mark.slow
@pytest.mark.parametrize("model_class", [SepNormBertModel, SepNormBertForSequenceClassification])
def test_the_exported_graph_computes_what_the_model_computes_at_other_shapes(model_class, tmp_path):
    model = model_class(tiny_bert_config(cls_norm="batch", sepnorm_scope="all")).eval()
    with torch.no_grad():  # trained-looking statistics: mean 0 / variance 1 would hide a normalization left out
        for norm in (module for module in model.modules() if isinstance(module, torch.nn.BatchNorm1d)):
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
            norm.num_batches_tracked += 10
    # README's snippet (two distinct example tensors: one tensor passed twice would become one graph input)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    ids = torch.randint(5, 99, (2, 8))
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (ids, torch.ones_like(ids)), str(path), dynamo=True,
                      input_names=["input_ids", "attention_mask"],
                      dynamic_shapes=({0: batch, 1: sequence}, {0: batch, 1: sequence}))  # fmt: skip
    session = onnxruntime.InferenceSession(str(path))
    other = bert_inputs(batch_size=3, seq_length=11)  # its first row padded
    exported = session.run(None, {name: other[name].numpy() for name in ("input_ids", "attention_mask")})[0]
    with torch.no_grad():
        expected = model(**other, return_dict=False)[0].numpy()
    assert exported.shape == expected.shape
    np.testing.assert_allclose(exported, expected, atol=1e-5, rtol=1e-4)
