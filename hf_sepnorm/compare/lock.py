"""One comparison at a time in an output folder: two writing the same runs, plots and report would read each other's
half-written files.

The lock is the operating system's (`fcntl.flock` on `<output_dir>/.hf-sepnorm-compare.lock`): it is released when
its process ends, however it ends, so a lock left by a killed comparison is taken over by the next one. The file
names the process holding it, for the message of a second comparison; it is emptied when the comparison ends, so a
process number still in it when the lock is free names a comparison that was killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError

logger = logging.getLogger(__name__)

LOCK_FILE = ".hf-sepnorm-compare.lock"


class OutputDirInUseError(InputError):
    """Another comparison is running in the same output folder."""


@contextlib.contextmanager
def output_dir_lock(output_dir: str | Path) -> Iterator[None]:
    """Hold the lock of `output_dir` for the block; raise `OutputDirInUseError` naming the process that holds it."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / LOCK_FILE, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process starting now"
            raise OutputDirInUseError(f"--output_dir {output_dir} is in use by another hf-sepnorm compare ({holder}): "
                                      "wait for it to end, or give another --output_dir.") from None  # fmt: skip
        handle.seek(0)
        previous = handle.read().strip()
        if previous:
            logger.warning("Taking over the lock of %s in %s: that comparison ended without releasing it (killed); "
                           "its finished runs are reused.", previous, output_dir)  # fmt: skip
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()  # a clean end: nothing to take over
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def holding_output_dir(run):
    """Decorate `run(output_dir, ...)` to run while holding the lock of its output folder."""

    @functools.wraps(run)
    def locked(output_dir, *args, **kwargs):
        with output_dir_lock(output_dir):
            return run(output_dir, *args, **kwargs)

    return locked
