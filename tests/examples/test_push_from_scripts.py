"""`run_glue.py --push_to_hub` against the local Hub server: the pushed repo loads without the package."""

import json
import sys
from pathlib import Path

import torch
from conftest import TINY_BERT_OVERRIDES
from hub_server import TEST_TOKEN, TEST_USER, card_metadata, hub_server  # noqa: F401 - `hub_server` is a fixture
from test_hub_push import PROBES, load_from_hub_in_fresh_process
from transformers import AutoModelForSequenceClassification, AutoTokenizer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
sys.path.insert(0, str(EXAMPLES))

import run_glue  # noqa: E402


def test_run_glue_push_to_hub_loads_with_trust_remote_code(hub_server, data_dir, tmp_path):  # noqa: F811
    repo_id = f"{TEST_USER}/sst2-sepnorm"
    output_dir = tmp_path / "sst2"
    run_glue.main(
        ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--output_dir", str(output_dir),
         "--do_train", "--do_eval", "--max_steps", "3", "--max_train_samples", "128", "--max_eval_samples", "32",
         "--per_device_train_batch_size", "8", "--config_overrides", TINY_BERT_OVERRIDES, "--report_to", "none",
         "--disable_tqdm", "true", "--push_to_hub", "--hub_model_id", repo_id, "--hub_token", TEST_TOKEN]
    )  # fmt: skip
    commit = hub_server.history(repo_id)[0]
    pushed = hub_server.files(repo_id, commit.oid)
    assert {"model.safetensors", "modeling_sepnorm_bert.py", "sepnorm.py", "tokenizer.json"} <= set(pushed)
    assert not any(name.startswith("checkpoint-") or name.endswith(".bin") for name in pushed)

    # the card is ours, with the run's own evaluation result in its model-index
    metadata = card_metadata(pushed["README.md"])
    assert "sepnorm" in metadata["tags"] and metadata["pipeline_tag"] == "text-classification"
    measured = json.loads((output_dir / "all_results.json").read_text())["eval_accuracy"]
    reported = {
        metric["type"]: metric["value"]
        for entry in metadata["model-index"]
        for result in entry["results"]
        for metric in result["metrics"]
    }
    assert any(abs(value - measured) < 1e-9 for value in reported.values()), reported

    loaded, logits = load_from_hub_in_fresh_process(hub_server, repo_id, commit.oid, tmp_path)
    assert loaded["module"].startswith("transformers_modules.")
    assert loaded["class"] == "SepNormBertForSequenceClassification"
    local_model = AutoModelForSequenceClassification.from_pretrained(output_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    with torch.no_grad():
        expected = local_model(**tokenizer(PROBES, padding=True, return_tensors="pt")).logits
    assert torch.equal(logits["pinned"], expected)
    assert torch.equal(logits["from_card"], expected)
