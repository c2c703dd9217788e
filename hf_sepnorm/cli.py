"""The `hf-sepnorm` command: `push` a checkpoint folder to the Hub, `convert` a stock checkpoint."""

from __future__ import annotations

import argparse
import sys

from .hub.cli import add_push_command
from .sepnorm import CLS_NORM_KINDS, SEPNORM_SCOPES


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-sepnorm", description="SepNorm for Hugging Face Transformers.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_push_command(commands)
    add_convert_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
