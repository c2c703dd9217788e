"""--max_seq_length beyond a checkpoint's position embeddings: the text scripts clamp it to the checkpoint's positions
with a warning, as transformers' run_glue.py and run_mlm.py clamp it to the tokenizer's model_max_length, rather than
failing with an index error in the first forward."""

import pytest
from conftest import tiny_bert_config
from transformers import AutoTokenizer

from hf_sepnorm import SepNormBertForMaskedLM

POSITIONS = 16


@pytest.fixture(scope="module")
def short_checkpoint(minilm_dir, tmp_path_factory):
    """A tiny SepNorm BERT with 16 positions, and MiniLM's tokenizer (whose model_max_length is 512)."""
    folder = tmp_path_factory.mktemp("short")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    model = SepNormBertForMaskedLM(tiny_bert_config(vocab_size=len(tokenizer), max_position_embeddings=POSITIONS))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def sentences(data_dir, tmp_path):
    lines = (data_dir / "text" / "wikitext2.valid.tokens").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(line for line in lines if len(line.split()) > 30)[:20000] + "\n", encoding="utf-8")
    return path


COMMON = ["--do_train", "--max_steps", "1", "--per_device_train_batch_size", "4", "--report_to", "none",
          "--save_strategy", "no", "--disable_tqdm", "true"]  # fmt: skip


def clamped(caplog, flag="--max_seq_length 64"):
    return any(flag in record.getMessage() and f"{POSITIONS} positions" in record.getMessage()
               for record in caplog.records)  # fmt: skip


def test_glue_clamps_to_the_checkpoints_positions(short_checkpoint, data_dir, tmp_path, caplog):
    from hf_sepnorm.scripts import glue

    with caplog.at_level("WARNING"):
        glue.main(["--model_name_or_path", str(short_checkpoint), "--task_name", "sst2", "--data_dir",
                   str(data_dir / "glue" / "SST-2"), "--max_seq_length", "64", "--max_train_samples", "8",
                   "--output_dir", str(tmp_path / "out"), *COMMON])  # fmt: skip
    assert clamped(caplog)


def test_mlm_clamps_to_the_checkpoints_positions(short_checkpoint, sentences, tmp_path, caplog):
    from hf_sepnorm.scripts import mlm

    with caplog.at_level("WARNING"):
        mlm.main(["--model_name_or_path", str(short_checkpoint), "--train_file", str(sentences), "--max_seq_length",
                  "64", "--max_train_samples", "8", "--output_dir", str(tmp_path / "out"), *COMMON])  # fmt: skip
    assert clamped(caplog)


def test_simcse_clamps_both_lengths_to_the_checkpoints_positions(short_checkpoint, sentences, data_dir, tmp_path,
                                                                 caplog):  # fmt: skip
    from hf_sepnorm.scripts import simcse

    with caplog.at_level("WARNING"):
        simcse.main(["--model_name_or_path", str(short_checkpoint), "--train_file", str(sentences), "--max_seq_length",
                     "64", "--max_train_samples", "8", "--sts_dir", str(data_dir / "glue" / "STS-B"),
                     "--max_eval_samples", "8", "--standardization_samples", "8", "--recalibration_batches", "1",
                     "--do_eval", "--output_dir", str(tmp_path / "out"), *COMMON])  # fmt: skip
    assert clamped(caplog) and clamped(caplog, "--eval_max_seq_length 128")
