"""The `hf-sepnorm` command: `compare` ShareNorm and SepNorm, `push` a checkpoint folder to the Hub, `convert` a
stock checkpoint."""

from __future__ import annotations

import argparse
import sys

from .hub.cli import add_push_command
from .remote_code.sepnorm import CLS_NORM_KINDS, SEPNORM_SCOPES


def add_convert_command(commands: argparse._SubParsersAction) -> None:
    convert = commands.add_parser(
        "convert",
        help="convert a stock BERT / ViT-MAE checkpoint into a SepNorm one",
        description="Load a stock BERT or ViT-MAE checkpoint (folder or Hub id) into its SepNorm class and save it.",
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
    from .conversion import convert_stock_checkpoint

    model = convert_stock_checkpoint(
        args.checkpoint,
        args.output_dir,
        init_cls_norm_from_token_norm=not args.fresh_cls_norm,
        cls_norm=args.cls_norm,
        sepnorm_scope=args.sepnorm_scope,
    )
    print(f"Saved {type(model).__name__} to {args.output_dir}")
    return 0


def add_compare_command(commands: argparse._SubParsersAction) -> None:
    from .compare.recipes import PRESETS

    compare = commands.add_parser(
        "compare",
        help="train the same recipe with ShareNorm and SepNorm and report how their [CLS] embeddings differ",
        description="Pretrain (MAE for images, MLM for text), linear-probe, fine-tune and analyze the [CLS] embedding "
        "of each cls_norm arm for N seeds; writes a Markdown report with plots. With no data arguments it runs the "
        "image track on scikit-learn's digits and needs nothing downloaded.",
    )
    compare.add_argument("--output_dir", default="sepnorm-comparison", help="where the report, plots and runs go")
    compare.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model and training sizes")
    compare.add_argument(
        "--arms", nargs="+", default=["shared", "batch"], choices=CLS_NORM_KINDS, help="the cls_norm values compared"
    )
    compare.add_argument("--seeds", type=int, help="seeds per arm (default: the preset's)")
    compare.add_argument("--pretrain_steps", type=int, help="override the preset's pretraining steps")
    compare.add_argument("--finetune_steps", type=int, help="override the preset's fine-tuning steps")
    compare.add_argument("--images", help="image folder with train/ and test/ (<split>/<class>/<image>)")
    compare.add_argument("--text", nargs="+", help="plain-text files for the text track's MLM pretraining")
    compare.add_argument("--glue_dir", help="folder of official GLUE task folders (SST-2/, CoLA/, ...)")
    compare.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from .compare import run_comparison

    steps = {name: value for name in ("pretrain_steps", "finetune_steps") if (value := getattr(args, name))}
    run_comparison(
        args.output_dir, args.preset, tuple(args.arms), args.seeds, args.images, args.text, args.glue_dir, steps
    )
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
