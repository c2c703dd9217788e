"""What `hf-sepnorm compare` shows a person: a first line saying what the run checks, one line per run, and at the end
the verdicts and where the report and plots are. Everything a run prints (the scripts' training logs, progress bars,
transformers' load reports, library warnings) goes to that run's `console.log`; on the console only what the
comparison does not expect of its own runs: an unexpected warning or error still shows. `--verbose` shows it all.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

# Warnings the comparison causes itself and expects, each with why (held back; in the run's console.log)
EXPECTED_WARNINGS = (
    # the Trainer pins dataloader memory by default; on a CPU-only machine torch warns that it cannot
    re.compile(r"'pin_memory' argument is set as true but no accelerator is found"),
    # the random-init reference readouts run a fresh model, whose [CLS] BatchNorm statistics are never updated
    re.compile(r"\[CLS\] BatchNorm runs in eval mode on running statistics that were never updated"),
    # a run fine-tunes the model it pretrained (or a local pretrained checkpoint): a local start, no Hub base model
    re.compile(r"The model card leaves base_model out: nothing in the local folder"),
)
# A load report is expected when it lists only a pretraining head left out (MAE decoder, MLM head) and a task head,
# pooler or [CLS] norm newly initialized: what loading a pretraining checkpoint into a fine-tuning class does
LOAD_REPORT_ROW = re.compile(r"^(\S+)\s*\|\s*([A-Z]+)\s*\|", re.MULTILINE)
EXPECTED_LOAD_REPORT_ROWS = {
    "UNEXPECTED": re.compile(r"^(decoder\.|cls\.|lm_head\.)"),
    "MISSING": re.compile(r"^(classifier\.|(\w+\.)?pooler\.|.*\.cls_norm\.)"),
}


def is_expected(message: str) -> bool:
    """Whether a warning or log message is one the comparison's runs cause by design (see the tables above)."""
    if any(pattern.search(message) for pattern in EXPECTED_WARNINGS):
        return True
    if " LOAD REPORT" not in message:
        return False
    rows = LOAD_REPORT_ROW.findall(message)
    expected = (status in EXPECTED_LOAD_REPORT_ROWS and EXPECTED_LOAD_REPORT_ROWS[status].match(key) for key, status in rows)
    return bool(rows) and all(expected)


class _Router:
    """A stream for log handlers and warnings: everything to the run's log, what is not expected to the console too."""

    def __init__(self, log, console):
        self.log, self.console = log, console

    def write(self, text: str) -> int:
        self.log.write(text)
        if text.strip() and not is_expected(text):
            self.console.write(text)
            self.console.flush()
        return len(text)

    def flush(self) -> None:
        self.log.flush()


# the libraries whose loggers write to their own stream handler (transformers': not propagated to the root)
LIBRARY_LOGGERS = ("", "transformers", "datasets", "huggingface_hub", "accelerate", "evaluate")


@contextlib.contextmanager
def run_output(log_file: Path, verbose: bool = False) -> Iterator[None]:
    """Within the block, what a run writes goes to `log_file`; unexpected warnings and logged warnings or errors also
    to the console (stderr). With `verbose`, everything goes to the console, as without this block."""
    if verbose:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    console = sys.stderr
    with open(log_file, "a", encoding="utf-8") as log, warnings.catch_warnings():
        router = _Router(log, console)
        warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: router.write(
            warnings.formatwarning(message, category, filename, lineno, line)
        )
        handlers = [handler for name in LIBRARY_LOGGERS for handler in logging.getLogger(name).handlers
                    if type(handler) is logging.StreamHandler]  # a console stream, not a file  # fmt: skip
        streams = [handler.setStream(router) for handler in handlers]
        last_resort, logging.lastResort = logging.lastResort, logging.StreamHandler(router)
        logging.lastResort.setLevel(logging.WARNING)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):  # prints and progress bars
                yield
        finally:
            logging.lastResort = last_resort
            for handler, stream in zip(handlers, streams):
                handler.setStream(stream)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """One line per run: which track, arm and seed, how long it took, time elapsed and an estimate of what is left
    (the mean time of the runs trained so far, times the runs still to train)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.trained, self.trained_seconds = total, 0, 0, 0.0
        self.started = time.monotonic()
        self.stream = stream or sys.stdout

    def start(self, track: str, arm: str, seed: int) -> None:
        self.run_started = time.monotonic()
        self.stream.write(f"[{self.done + 1}/{self.total}] {track} {arm} seed {seed} ... ")
        self.stream.flush()

    def finish(self, reused: bool = False) -> None:
        took = time.monotonic() - self.run_started
        self.done += 1
        if not reused:
            self.trained, self.trained_seconds = self.trained + 1, self.trained_seconds + took
        left = self.trained_seconds / self.trained * (self.total - self.done) if self.trained else 0.0
        what = "reused (finished earlier)" if reused else f"done in {took:.0f} s"
        self.stream.write(f"{what}; elapsed {_duration(time.monotonic() - self.started)}, about "
                          f"{_duration(left)} left\n")  # fmt: skip
        self.stream.flush()


def plain(markdown: str) -> str:
    """A report line for the console: without Markdown's bold and code marks."""
    return markdown.replace("**", "").replace("`", "")
