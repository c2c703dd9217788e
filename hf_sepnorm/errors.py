"""The error of a user's input that cannot work: an argument, a file, a checkpoint of the wrong kind.

The scripts (`run_main`) and the `hf-sepnorm` commands print it in one line, naming the problem and the fix, and exit
with code 2 (argparse's for a usage error), without a traceback: the traceback of an `InputError` shows the package's
code, not the user's mistake. Every other exception keeps its traceback."""


class InputError(ValueError):
    """A user's input that cannot work; the message names the input and the fix."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the user named that is not there."""


__all__ = ["InputError", "MissingInputError"]
