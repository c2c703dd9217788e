"""Run example scripts as `python <script> <arguments>` runs them (as __main__, with that argv), all in one fresh
process: the scripts share their imports, which take most of the time."""

import json
import subprocess
import sys

RUN_SCRIPTS = """
import contextlib, io, json, runpy, sys, traceback
results = []
for script, *arguments in json.loads(sys.argv[1]):
    sys.argv = [script, *arguments]
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exit:
            code = exit.code or 0
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


def run_scripts(runs: list[list[str]], cwd=None, timeout: float = 600) -> list[dict]:
    """Each `[script, *arguments]` of `runs`, in order: its exit code (0 when it returned, 1 on an exception, whose
    traceback is in its stderr), stdout and stderr."""
    result = subprocess.run([sys.executable, "-c", RUN_SCRIPTS, json.dumps([list(map(str, run)) for run in runs])],
                            capture_output=True, text=True, timeout=timeout, cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
