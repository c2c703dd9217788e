"""Training never overwrites another run's model or checkpoints silently: it stops before anything runs."""

import sys
from pathlib import Path

import pytest
from conftest import TINY_BERT_OVERRIDES, tiny_bert_config
from safetensors.torch import load_file

from hf_sepnorm import SepNormBertForSequenceClassification
from hf_sepnorm.training import SepNormTrainingArguments
from hf_sepnorm.training.checkpoints import checkpoint_folders, last_complete_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from hf_sepnorm.scripts import glue as run_glue


def test_a_folder_with_a_saved_model_or_checkpoints_is_refused_unless_told(tmp_path):
    model_dir, run_dir = tmp_path / "model", tmp_path / "run"
    SepNormBertForSequenceClassification(tiny_bert_config()).save_pretrained(model_dir)
    with pytest.raises(ValueError, match=r"already holds a saved model \(model.safetensors\).*--overwrite_output_dir true"):
        SepNormTrainingArguments(output_dir=str(model_dir), do_train=True)
    (run_dir / "checkpoint-2").mkdir(parents=True)
    (run_dir / "checkpoint-10").mkdir()
    with pytest.raises(ValueError, match=r"\(checkpoint-10\): continue it with --resume_from_checkpoint true"):
        SepNormTrainingArguments(output_dir=str(run_dir), do_train=True)
    # what is allowed: told to overwrite, resuming, evaluating a saved model in its own folder, a new folder
    SepNormTrainingArguments(output_dir=str(model_dir), do_train=True, overwrite_output_dir=True)
    with pytest.raises(FileNotFoundError, match="--resume_from_checkpoint true: no complete checkpoint in"):
        SepNormTrainingArguments(output_dir=str(run_dir), do_train=True, resume_from_checkpoint="true")
    (run_dir / "checkpoint-10" / "trainer_state.json").write_text("{}")  # complete: its state and its weights
    SepNormBertForSequenceClassification(tiny_bert_config()).save_pretrained(run_dir / "checkpoint-10")
    SepNormTrainingArguments(output_dir=str(run_dir), do_train=True, resume_from_checkpoint="true")
    SepNormTrainingArguments(output_dir=str(model_dir), do_eval=True)
    SepNormTrainingArguments(output_dir=str(tmp_path / "new"), do_train=True)


def test_a_missing_or_half_saved_checkpoint_is_refused_before_the_data_is_read(tmp_path):
    """The checkpoint is checked as the arguments are parsed: the data folder below does not exist, and the error
    names the checkpoint, not the data."""
    half_saved = tmp_path / "run" / "checkpoint-4"
    half_saved.mkdir(parents=True)
    arguments = ["--task_name", "sst2", "--data_dir", str(tmp_path / "no-such-folder"), "--output_dir",
                 str(tmp_path / "run"), "--do_train", "--config_overrides", TINY_BERT_OVERRIDES]  # fmt: skip
    with pytest.raises(ValueError, match=r"checkpoint-4 is not a complete checkpoint"):
        run_glue.main([*arguments, "--resume_from_checkpoint", str(half_saved)])
    with pytest.raises(FileNotFoundError, match=r"checkpoint-9: no such folder"):
        run_glue.main([*arguments, "--resume_from_checkpoint", str(tmp_path / "run" / "checkpoint-9")])


@pytest.mark.slow
def test_run_glue_twice_into_one_folder_stops_before_training_and_overwrites_only_when_told(data_dir, tmp_path):
    arguments = ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--output_dir", str(tmp_path),
                 "--do_train", "--max_steps", "2", "--max_train_samples", "32", "--max_seq_length", "32",
                 "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "500", "--report_to", "none",
                 "--disable_tqdm", "true"]  # fmt: skip
    run_glue.main([*arguments, "--seed", "1"])
    first = load_file(tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="already holds a saved model"):
        run_glue.main([*arguments, "--seed", "2"])
    assert all((load_file(tmp_path / "model.safetensors")[name] == tensor).all() for name, tensor in first.items())
    run_glue.main([*arguments, "--seed", "2", "--overwrite_output_dir", "true"])
    second = load_file(tmp_path / "model.safetensors")
    assert any(not (second[name] == tensor).all() for name, tensor in first.items())


@pytest.mark.slow
def test_overwriting_a_folder_removes_the_earlier_runs_checkpoints(data_dir, tmp_path):
    """--overwrite_output_dir replaces the earlier run's files, its checkpoint-N folders included: none is left for
    --resume_from_checkpoint true (or save_total_limit's rotation) to take for the new run's."""
    arguments = ["--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"), "--output_dir", str(tmp_path),
                 "--do_train", "--max_train_samples", "32", "--max_seq_length", "32", "--per_device_train_batch_size",
                 "8", "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "500", "--report_to", "none",
                 "--disable_tqdm", "true"]  # fmt: skip
    run_glue.main([*arguments, "--max_steps", "3", "--save_steps", "3"])
    assert (tmp_path / "checkpoint-3").is_dir()
    run_glue.main([*arguments, "--max_steps", "2", "--save_steps", "2", "--overwrite_output_dir", "true"])
    assert [path.name for path in checkpoint_folders(str(tmp_path))] == ["checkpoint-2"]
    assert last_complete_checkpoint(str(tmp_path)) == tmp_path / "checkpoint-2"
