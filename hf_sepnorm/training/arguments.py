"""Command-line arguments shared by the example scripts (parsed by `HfArgumentParser`)."""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, TrainingArguments

from ..errors import InputError
from ..remote_code.configuration_sepnorm import CLS_NORM_KINDS, SEPNORM_SCOPES
from .checkpoints import checkpoint_folders, resumed_checkpoint


@dataclass
class SepNormModelArguments:
    """Which model to train: a SepNorm checkpoint, a stock BERT / ViT-MAE checkpoint to convert, or none (scratch)."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "SepNorm or stock BERT/ViT-MAE checkpoint (folder or Hub id). Leave out to train from scratch."},
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config fields for a model built from scratch, e.g. 'hidden_size=128,num_hidden_layers=4'."},
    )
    cls_norm: str | None = field(
        default=None,
        metadata={
            "help": "How [CLS] is normalized: batch (paper default), layer, rms or shared (ShareNorm baseline). "
            "Default: 'batch' for a new or converted model, the checkpoint's own for a SepNorm checkpoint.",
            "choices": list(CLS_NORM_KINDS),
        },
    )
    sepnorm_scope: str | None = field(
        default=None,
        metadata={"help": "all: every norm of the sequence; final: only the last one.", "choices": list(SEPNORM_SCOPES)},
    )
    revision: str = field(default="main", metadata={"help": "Branch, tag or commit of a Hub checkpoint."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where to cache Hub downloads."})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run the modeling code of a Hub checkpoint (pin --revision)."}
    )

    def sepnorm_overrides(self) -> dict[str, str]:
        """The SepNorm config fields given on the command line."""
        return {
            name: value
            for name, value in (("cls_norm", self.cls_norm), ("sepnorm_scope", self.sepnorm_scope))
            if value is not None
        }


@dataclass
class SepNormTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus what `SepNormTrainer` does for the [CLS] BatchNorms."""

    recalibrate_cls_norm: bool = field(
        # Off by default: measured to hurt on average, after MAE pretraining and after GLUE fine-tuning
        # (docs/cls_statistics.md); the running statistics of training are used as they are.
        default=False,
        metadata={
            "help": "Re-estimate the [CLS] BatchNorm population statistics on training batches before evaluation, "
            "prediction and the final save (PreciseBN). Default false: measured to hurt on average "
            "(docs/cls_statistics.md)."
        },
    )
    recalibration_batches: int = field(
        default=50, metadata={"help": "How many training batches re-estimate the [CLS] BatchNorm statistics."}
    )
    sync_cls_batchnorm: bool = field(
        default=True,
        metadata={
            "help": "With several processes, normalize [CLS] over the global batch (ClsSyncBatchNorm); false keeps "
            "per-process statistics and averages them after each step."
        },
    )

    hub_modified_code_is_mine: bool = field(
        default=False,
        metadata={"help": "With --push_to_hub, push code files of output_dir that differ from the installed "
                  "hf_sepnorm's: the change is yours, and the card says the code was modified (without it, refused)."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train even though --output_dir already holds a saved model or checkpoints: the new run's "
                  "files replace theirs (its checkpoint-N folders are removed as training starts). Without it such a "
                  "run stops before training."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.recalibration_batches < 1:
            raise InputError(
                f"--recalibration_batches {self.recalibration_batches}: give 1 or more, or --recalibrate_cls_norm false."
            )
        if self.do_train and not self.overwrite_output_dir and self.resume_from_checkpoint in (None, False):
            self.check_output_dir_is_free()
        if self.do_train:  # a checkpoint that is missing or half-saved is refused before data and model are loaded
            resumed_checkpoint(self.resume_from_checkpoint, self.output_dir)

    def check_output_dir_is_free(self) -> None:
        """Training writes its model and checkpoints into output_dir: refuse, before anything runs, a folder holding
        another run's, so that nothing trained before is silently overwritten."""
        from ..conversion import saved_model_files

        folder = Path(self.output_dir)
        if weights := saved_model_files(folder):
            raise InputError(
                f"--output_dir {folder} already holds a saved model ({weights[0]}) that training would overwrite: "
                "give another --output_dir, or --overwrite_output_dir true to replace it."
            )
        if checkpoints := checkpoint_folders(str(folder)):
            raise InputError(
                f"--output_dir {folder} holds the checkpoints of an earlier run ({checkpoints[-1].name}): continue it with "
                "--resume_from_checkpoint true, or give --overwrite_output_dir true to start over."
            )


def parse_arguments(*dataclass_types, args: list[str] | None = None) -> tuple:
    """Parse the command line (or a single `.json` file of arguments) into the given dataclasses. A flag (or json
    key) that none of them has is one `InputError` naming it and the closest valid flag."""
    parser = HfArgumentParser(dataclass_types)
    argv = sys.argv[1:] if args is None else args
    if len(argv) == 1 and argv[0].endswith(".json"):
        known = {action.dest for action in parser._actions}
        unknown = sorted(set(json.loads(Path(argv[0]).read_text(encoding="utf-8"))) - known)
        if unknown:
            raise InputError(f"{argv[0]}: {unknown_flag_message(unknown[0], sorted(known), prefix='')}")
        return parser.parse_json_file(json_file=argv[0])
    *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        flags = [option for action in parser._actions for option in action.option_strings]
        flag = next((word for word in remaining if word.startswith("-")), remaining[0])
        raise InputError(unknown_flag_message(flag.split("=")[0], flags))
    return tuple(parsed)


def unknown_flag_message(flag: str, valid: list[str], prefix: str = "--") -> str:
    """`flag` is not one of `valid`: the closest valid one (difflib), or where to find the list."""
    if not flag.startswith("-"):
        return f"unexpected argument {flag!r}: every value follows its flag (--name value); see --help."
    closest = difflib.get_close_matches(flag, valid, n=1, cutoff=0.6)
    hint = f"did you mean {closest[0]}?" if closest else "see --help for the valid flags."
    return f"unknown flag {flag}: {hint}" if prefix else f"unknown key {flag!r}: {hint}"


def run_main(main) -> None:
    """Run a script's `main()`. A mistake in the user's input (`InputError`) ends it with its one-line message and
    exit code 2, as argparse does; Ctrl-C with exit code 130 (the shell's for SIGINT): an interrupted training says
    in one line where it stopped and how to resume (`SepNormTrainer.train`). Neither prints a traceback. A run that
    ends well ends its process group."""
    try:
        main()
        # each process of a distributed run ends its process group, as torch asks: left to the interpreter's exit,
        # gloo's worker threads can abort it ("terminate called without an active exception", SIGABRT)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    except InputError as error:
        print(f"{Path(sys.argv[0]).name}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)


@dataclass
class ImageDataArguments:
    """Images for run_mae.py and run_image_classification.py."""

    train_dir: str | None = field(
        default=None, metadata={"help": "Image folder (<dir>/<class>/<image>) or a folder of MNIST-format idx files."}
    )
    validation_dir: str | None = field(default=None, metadata={"help": "Validation image folder."})
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub image dataset instead of folders."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Its configuration."})
    # also under the names of transformers' run_image_classification.py
    image_column: str = field(
        default="image", metadata={"help": "The Hub dataset's image column.", "aliases": ["--image_column_name"]}
    )
    label_column: str = field(
        default="label", metadata={"help": "The Hub dataset's label column.", "aliases": ["--label_column_name"]}
    )
    # argparse formats help strings with %: a literal percent sign is written %%
    validation_split_percentage: int = field(default=5, metadata={"help": "Held-out %% without a validation set."})
    image_size: int | None = field(
        default=None, metadata={"help": "Model input size (default: the checkpoint's, else the images' size)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training images."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation images."})
    drop_unreadable_images: bool = field(
        default=False,
        metadata={"help": "Leave out images that cannot be decoded (counted in a warning); by default any stops the "
                  "run before training, listing them."},
    )

    def __post_init__(self):
        if self.train_dir is None and self.dataset_name is None:
            raise InputError("Give --train_dir DIR or --dataset_name NAME.")
        folders = [flag for flag, folder in (("--train_dir", self.train_dir), ("--validation_dir", self.validation_dir))
                   if folder is not None]  # fmt: skip
        if self.dataset_name is not None and folders:
            raise InputError(f"--dataset_name {self.dataset_name} and {' / '.join(folders)} are two sources of images: "
                             "give the data set or the folders, not both.")  # fmt: skip
