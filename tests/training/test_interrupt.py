"""Ctrl-C in a real training process: one line saying where it stopped and how to resume, exit code 130, no
traceback; the resumed run says where it resumed from."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY_BERT_OVERRIDES

from hf_sepnorm.training import last_complete_checkpoint

RUN_GLUE = Path(__file__).resolve().parents[2] / "examples" / "run_glue.py"


def deliverable_sigint() -> None:
    """Ctrl-C reaches a training process whose SIGINT has its default disposition and is not blocked. A child
    inherits both from the process that starts it (exec keeps an ignored or blocked SIGINT), and the suite's process
    may have either by then: in the full suite this test's child once ignored SIGINT for 300 s, alone never."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.slow
def test_an_interrupted_run_says_how_to_resume_and_the_resumed_one_says_from_where(data_dir, tmp_path):
    output_dir = tmp_path / "run"
    command = [sys.executable, str(RUN_GLUE), "--task_name", "sst2", "--data_dir", str(data_dir / "glue" / "SST-2"),
               "--output_dir", str(output_dir), "--do_train", "--max_train_samples", "64", "--max_seq_length", "32",
               "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "500", "--per_device_train_batch_size", "4",
               "--save_steps", "2", "--report_to", "none", "--disable_tqdm", "true"]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([*command, "--max_steps", "100000"], stderr=subprocess.PIPE, text=True, env=environment,
                               preexec_fn=deliverable_sigint, start_new_session=True)
    deadline = time.time() + 600  # loaded cores: imports, tokenizer training and the first steps take minutes
    while last_complete_checkpoint(str(output_dir)) is None and process.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    if last_complete_checkpoint(str(output_dir)) is None:
        process.kill()
        raise AssertionError(f"no checkpoint saved within 600 s: {process.communicate()[1][-2000:]}")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    last = last_complete_checkpoint(str(output_dir))
    message = next(line for line in stderr.splitlines() if "Training interrupted at step" in line)
    assert f"The last complete checkpoint is {last}: rerun the same command with --resume_from_checkpoint true" in message

    step = int(last.name.split("-")[1])
    resumed = subprocess.run([*command, "--max_steps", str(step + 1), "--resume_from_checkpoint", "true"],
                             stderr=subprocess.PIPE, text=True, env=environment, timeout=240)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming from {last} (step {step})" in resumed.stderr
