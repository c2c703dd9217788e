"""One comparison at a time in an output folder (issue 32): a second `hf-sepnorm compare` into the folder of a running
one stops in one line naming the first's process; the lock of a killed comparison is taken over."""

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from hf_sepnorm.compare.lock import LOCK_FILE, OutputDirInUseError, output_dir_lock


def compare(output_dir, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hf_sepnorm_cli", "compare", "--output_dir", str(output_dir),
                             "--seeds", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, **kwargs)  # fmt: skip


def wait_for_lock(lock_file, process: subprocess.Popen, seconds: float = 300) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        holder = lock_file.read_text() if lock_file.is_file() else ""
        if f"process {process.pid} " in holder:
            return holder
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{lock_file} never named process {process.pid}")


@pytest.mark.slow
def test_a_second_comparison_into_the_same_folder_is_refused_and_a_killed_ones_lock_taken_over(tmp_path, caplog):
    first = compare(tmp_path / "out")
    try:
        holder = wait_for_lock(tmp_path / "out" / LOCK_FILE, first)
        second = compare(tmp_path / "out")
        _, error = second.communicate(timeout=300)
        assert second.returncode == 2
        error = error.strip()
        assert len(error.splitlines()) == 1, error
        assert f"--output_dir {tmp_path / 'out'} is in use by another hf-sepnorm compare ({holder})" in error
        assert f"process {first.pid} " in error and "give another --output_dir" in error
        assert first.poll() is None  # the first one runs on
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()

    with caplog.at_level(logging.WARNING, logger="hf_sepnorm"), output_dir_lock(tmp_path / "out"):
        assert f"process {os.getpid()} " in (tmp_path / "out" / LOCK_FILE).read_text()
        with pytest.raises(OutputDirInUseError, match=f"process {os.getpid()} "):  # held: refused here too
            with output_dir_lock(tmp_path / "out"):
                pass
    assert f"Taking over the lock of process {first.pid} " in caplog.text
    assert (tmp_path / "out" / LOCK_FILE).read_text() == ""  # released cleanly: nothing to take over next time
