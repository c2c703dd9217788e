"""What the `hf-sepnorm` commands run: `compare` ShareNorm and SepNorm, `push` a checkpoint folder to the Hub,
`convert` a stock checkpoint. Their arguments are parsed by `hf_sepnorm_cli` (outside the package, so that `--help`
needs neither torch nor transformers); `python -m hf_sepnorm_cli` runs the same command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import InputError
from .families import FAMILIES
from .hub.cli import run_push


class ConvertInputError(InputError):
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
    if args.cls_norm == "batch" and not args.calibration_file and not args.uncalibrated:
        raise ConvertInputError(
            "--cls_norm batch: the new [CLS] BatchNorms need their statistics estimated on your data, or the converted "
            "model embeds every input alike: give --calibration_file FILE (text models: a few hundred lines, one input "
            "per line; image models: images or folders of them), or --cls_norm layer (no batch statistics), or "
            "--uncalibrated for a model you train next."
        )
    if args.calibration_file and args.cls_norm != "batch":
        raise ConvertInputError(
            f"--calibration_file estimates [CLS] BatchNorm statistics, and --cls_norm {args.cls_norm} has none: leave "
            "it out, or convert with --cls_norm batch."
        )
    for file in args.calibration_file or []:
        if not Path(file).exists():
            raise ConvertInputError(f"--calibration_file {file}: no such file (text models: plain text, one input per "
                                    "line; image models: image files or folders of them).")  # fmt: skip


def run_convert(args: argparse.Namespace) -> int:
    try:
        check_convert_inputs(args)
        return _convert(args)
    except InputError as error:  # also the data's: a calibration file too small or not in --encoding
        print(f"hf-sepnorm convert: error: {error}", file=sys.stderr)
        return 2


def _convert(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    from .conversion import (
        calibrate_on_images,
        calibrate_on_text,
        calibration_images,
        calibration_lines,
        clear_output_dir,
        convert_stock_checkpoint,
        new_cls_norms_summary,
        save_converted,
        sepnorm_class_for,
    )
    from .data.text import check_text_files
    from .hub.cards import sentence_pooling
    from .recalibration import cls_statistics_never_updated

    try:
        model_class = sepnorm_class_for(AutoConfig.from_pretrained(args.checkpoint))
    except (OSError, ValueError) as error:  # no such Hub repo, no config, or a family SepNorm does not have
        raise ConvertInputError(f"{args.checkpoint}: {str(error).splitlines()[0]}") from None
    text_model = FAMILIES[model_class.config_class.model_type].preprocessor.kind == "tokenizer"
    if args.calibration_file:  # read before any work: too few inputs, or a byte not in --encoding, stop it at once
        if text_model:
            check_text_files(args.calibration_file, "--calibration_file", args.encoding)
            calibration_lines(args.calibration_file, args.encoding)
        else:
            calibration_images(args.calibration_file)
    model = convert_stock_checkpoint(
        args.checkpoint,
        init_cls_norm_from_token_norm=not args.fresh_cls_norm,
        cls_norm=args.cls_norm,
        sepnorm_scope=args.sepnorm_scope,
    )
    statistics = "no [CLS] BatchNorm"
    if args.calibration_file:
        if text_model:
            used = calibrate_on_text(model, args.checkpoint, args.calibration_file, args.calibration_batches,
                                     encoding=args.encoding)  # fmt: skip
        else:
            used = calibrate_on_images(model, args.checkpoint, args.calibration_file, args.calibration_batches)
        names = ", ".join(Path(name).name for name in args.calibration_file)
        statistics = f"estimated on {used} batches of {names}"
        print(f"Estimated the [CLS] BatchNorm statistics on {used} batches of {', '.join(args.calibration_file)}.")
    elif cls_statistics_never_updated(model):  # --uncalibrated
        statistics = "not estimated (--uncalibrated): mean 0 and variance 1 until trained"
    if args.overwrite_output_dir:  # only now: a conversion or calibration that fails leaves the old model in place
        clear_output_dir(args.output_dir)
    save_converted(model, args.checkpoint, args.output_dir, sentence_pooling=args.sentence_pooling)
    print(new_cls_norms_summary(model, initialized_from_token_norms=not args.fresh_cls_norm))
    pooling = sentence_pooling(args.output_dir)
    if pooling not in (None, "cls") and args.cls_norm != "shared":
        print(f"Kept the sentence-transformers pooling of {args.checkpoint} ({pooling}): SentenceTransformer reads "
              "the [CLS] token only among the others. --sentence_pooling cls makes it the [CLS] embedding.")  # fmt: skip
    write_conversion_card(model, args, statistics)
    print(f"Saved {type(model).__name__} to {args.output_dir}")
    return 0


def write_conversion_card(model, args: argparse.Namespace, statistics: str) -> None:
    """The converted folder's README.md: the SepNorm card, naming the source and what is new. `base_model` (metadata
    the Hub links) only for a Hub checkpoint (`hub_base_model`): a local folder is named in the text, by its name."""
    from .hub import hub_base_model, render_model_card
    from .hub.cards import sentence_pooling, source_name

    base_model = hub_base_model(args.checkpoint)
    card = render_model_card(
        model,
        repo_id="<your-namespace>/<repo-name>",  # the reader fills it in; `hf-sepnorm push` puts the real one
        base_model=base_model,
        base_model_relation="finetune",  # the Hub's word for weights derived from the base's
        sentence_pooling=sentence_pooling(args.output_dir),
        training_summary={
            "converted from": f"{f'`{base_model}`' if base_model else source_name(args.checkpoint)} (stock, by "
            "`hf-sepnorm convert`; not trained since)",
            "new [CLS] norms": "initialized from their default" if args.fresh_cls_norm
            else "copies of the LayerNorms they sit in",
            "[CLS] BatchNorm statistics": statistics,
        },
    )
    card.save(Path(args.output_dir) / "README.md")


def run_compare(args: argparse.Namespace) -> int:
    from .compare import run_comparison
    from .hub.push import CheckpointFolderError, HubPushError

    try:
        run_comparison(
            args.output_dir, args.preset, tuple(args.arms), args.seeds, args.images, args.text, args.glue_dir,
            args.pretrained, args.pretrain_steps, args.finetune_steps, args.recalibrate_cls_norm,
            args.finetune_learning_rate, push_to_hub=args.push_to_hub,
            push_arms=tuple(args.push_arms) if args.push_arms else None, hub_token=args.hub_token,
            hub_private_repo=args.hub_private_repo or None, verbose=args.verbose,
        )  # fmt: skip
    except (HubPushError, CheckpointFolderError) as error:  # after the comparison: its results and weights are kept
        print(f"hf-sepnorm compare: error: {error} The comparison's report and runs are in {args.output_dir}: the same "
              "command again reuses them and pushes.", file=sys.stderr)  # fmt: skip
        return 1
    except InputError as error:  # an argument, a data folder, the repo prefix, or a script's own input error
        print(f"hf-sepnorm compare: error: {error}", file=sys.stderr)
        return 2
    return 0


COMMANDS = {"compare": run_compare, "push": run_push, "convert": run_convert}  # what each parsed command runs

