"""`SepNormTrainer`: the HF Trainer, doing what SepNorm's [CLS] BatchNorms need inside the Trainer's own hooks."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist
import transformers.trainer as trainer_module
from transformers import PreTrainedModel, Trainer, TrainerCallback
from transformers.trainer_utils import has_length
from transformers.utils.hub import hf_api

from ..cls_norms import cls_batchnorms, nonfinite_cls_batches
from ..errors import InputError
from ..recalibration import cls_statistics_never_updated, recalibrate_cls_batchnorm
from .arguments import SepNormTrainingArguments
from .checkpoints import last_complete_checkpoint, remove_checkpoints, resumed_checkpoint
from .distributed import (
    ClsStatisticsCallback,
    average_cls_statistics,
    check_ranks_identical,
    cls_statistics,
    convert_cls_batchnorm_to_sync,
)
from .heads import CARD_NOTES

logger = logging.getLogger(__name__)

# What the Trainer's pushes leave out beside its own patterns: the pickled TrainingArguments (loading a pickle runs
# code; nothing needs it, a resume from `last-checkpoint` included)
NOT_PUSHED = ("training_args.bin", "*/training_args.bin")


@contextlib.contextmanager
def _uploads_leaving_out(patterns: tuple[str, ...], check=lambda folder, ignore_patterns: None):
    """The Trainer uploads with `transformers.trainer.hf_api().upload_folder(..., ignore_patterns=[...])`, its own
    patterns fixed: for the duration, those uploads also leave out `patterns`, after `check(folder, patterns)`."""
    real_hf_api = trainer_module.hf_api

    class LeavingOut:
        def __getattr__(self, name):
            return getattr(real_hf_api(), name)

        def upload_folder(self, *args, ignore_patterns=None, **kwargs):
            ignored = [ignore_patterns] if isinstance(ignore_patterns, str) else list(ignore_patterns or [])
            check(kwargs["folder_path"], [*ignored, *patterns])
            return real_hf_api().upload_folder(*args, ignore_patterns=[*ignored, *patterns], **kwargs)

    trainer_module.hf_api = LeavingOut
    try:
        yield
    finally:
        trainer_module.hf_api = real_hf_api


class SepNormTrainer(Trainer):
    """A `transformers.Trainer` for SepNorm models. Same constructor and methods as the Trainer; the [CLS]
    BatchNorm options come from `SepNormTrainingArguments` (a plain `TrainingArguments` gets their defaults).

    - **Several processes** (built under `torchrun` / `accelerate launch`): the [CLS] BatchNorms become
      `ClsSyncBatchNorm` (statistics of the global batch; `sync_cls_batchnorm=False` keeps per-process statistics,
      averaged after each step), and a callback checks at the end of training that every rank holds the same state.
    - **`train`**: `resume_from_checkpoint=True`, `"true"` or `"last"` resumes from the last *complete* checkpoint
      (a save killed half-way is skipped), and says from which; an interrupted run (Ctrl-C) says in one line where
      it stopped and how to resume.
    - **Re-estimating the [CLS] statistics** (`recalibrate_cls_norm=True`; off by default, measured to hurt on
      average in docs/cls_statistics.md): `train` refuses, before the first step, a setting where it cannot work
      (training batches of one sample) and re-estimates after training, so that the final model saved next carries
      them; `evaluate` / `predict` re-estimate first when training moved them since the last re-estimation
      (`recalibrate_cls_batchnorm`).
    - **The Hub**: `create_model_card` writes this package's model card (`hf_sepnorm.hub.render_model_card`), so
      `push_to_hub` publishes it; checkpoint pushes (`hub_strategy`) carry the modeling code the config's
      `auto_map` names; `hub_revision` names a branch that is created if missing; no push carries the pickled
      `training_args.bin`.
    """

    def __init__(self, model: PreTrainedModel | torch.nn.Module | None = None, args=None, **kwargs):
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if model is not None and args is not None and args.world_size > 1:
            # before the Trainer wraps the model for distributed training
            synchronized = sepnorm_option(args, "sync_cls_batchnorm") and convert_cls_batchnorm_to_sync(model) > 0
            logger.info("%d processes; [CLS] BatchNorm statistics synchronized: %s", args.world_size, synchronized)
            callbacks.append(ClsStatisticsCallback(statistics_synchronized=synchronized))
        self.step_timer = StepTimer()
        callbacks.append(self.step_timer)
        super().__init__(model=model, args=args, callbacks=callbacks, **kwargs)
        self.cls_statistics_step: int | None = None  # the global step of the last re-estimation
        self.re_estimations = 0
        # (global step, re-estimations) when the model was last saved to output_dir: what its card's metrics describe
        self.saved_as: tuple[int, int] | None = None
        self.warned_nonfinite = False  # `log_nonfinite_cls_batches` warns once per run

    # ---- [CLS] BatchNorm statistics ----

    def recalibrate_cls_batchnorm(self) -> int:
        """Re-estimate the [CLS] BatchNorm statistics on `recalibration_batches` training batches (PreciseBN), on
        every process alike, when `recalibrate_cls_norm` asks for it, and always when they were never updated (mean 0,
        variance 1, as after converting a stock checkpoint: they describe nothing, so there is nothing to lose).
        Returns the number of batches used; 0 when there is nothing to do (turned off and trained statistics, no
        [CLS] BatchNorm, no training data)."""
        if self.recalibrates():
            self.check_recalibration_can_run()
        elif self.estimates_never_updated_statistics():
            if self._train_batch_size < 2:
                logger.warning(
                    "The [CLS] BatchNorm statistics were never updated and training batches of %d sample cannot "
                    "estimate them: evaluation normalizes [CLS] with mean 0 and variance 1.", self._train_batch_size
                )
                return 0
            logger.info("The [CLS] BatchNorm statistics were never updated (mean 0, variance 1): estimating them")
        else:
            return 0
        # A fixed seed: the batches drawn (and MAE's masks) do not depend on, nor change, the training's random state,
        # so an evaluation does not alter the run that follows it and a resumed run ends on the same statistics.
        device = self.args.device
        devices = [] if device.type == "cpu" else [device.index or 0]
        with torch.random.fork_rng(devices=devices, device_type=device.type):
            torch.manual_seed(self.args.seed)
            used = recalibrate_cls_batchnorm(
                self.model, self.get_train_dataloader(), max_batches=sepnorm_option(self.args, "recalibration_batches")
            )
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            average_cls_statistics(self.model)  # identical on every rank, also without ClsSyncBatchNorm
            check_ranks_identical(cls_statistics(self.model), "After re-estimating the [CLS] BatchNorm statistics")
        self.cls_statistics_step = self.state.global_step
        self.re_estimations += 1
        logger.info("Re-estimated the [CLS] BatchNorm statistics on %d training batches", used)
        return used

    def recalibrates(self) -> bool:
        return bool(
            sepnorm_option(self.args, "recalibrate_cls_norm")
            and self.train_dataset is not None
            and self.model is not None
            and cls_batchnorms(self.model)
        )

    def estimates_never_updated_statistics(self) -> bool:
        return bool(
            self.train_dataset is not None and self.model is not None and cls_statistics_never_updated(self.model)
        )

    def check_recalibration_can_run(self) -> None:
        """Batches of one sample have no variance: re-estimation skips them, and with only those it cannot run."""
        samples = len(self.train_dataset) if has_length(self.train_dataset) else None
        if self._train_batch_size < 2 or (samples is not None and samples < 2):
            raise InputError(
                f"Re-estimating the [CLS] BatchNorm statistics needs training batches of 2 or more samples; this run "
                f"has batches of {self._train_batch_size} (--per_device_train_batch_size) and {samples} training "
                "samples. Use --per_device_train_batch_size 2 or more (with --gradient_accumulation_steps to "
                "keep the effective batch size), or turn re-estimation off with --recalibrate_cls_norm false."
            )

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        if self.recalibrates():
            self.check_recalibration_can_run()  # now, rather than after training, with nothing saved yet
        checkpoint = self.complete_checkpoint(resume_from_checkpoint)
        if checkpoint is None and sepnorm_option(self.args, "overwrite_output_dir") and self.args.should_save:
            # the earlier run's checkpoints, which resuming or save_total_limit's rotation would take for this run's
            if removed := remove_checkpoints(self.args.output_dir):
                logger.warning("--overwrite_output_dir: removed the earlier run's %s", ", ".join(removed))
        if checkpoint is not None and self.is_world_process_zero():
            step = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"]
            logger.warning("Resuming from %s (step %d)", checkpoint, step)
        try:
            output = super().train(resume_from_checkpoint=checkpoint, **kwargs)
        except KeyboardInterrupt:
            if self.is_world_process_zero():
                logger.warning(self.interrupted_message())
            raise
        try:
            self.recalibrate_cls_batchnorm()
        except Exception:
            self.save_model()
            logger.error(
                "Re-estimating the [CLS] BatchNorm statistics after training failed; the trained model is saved in "
                "%s with the running statistics of training.",
                self.args.output_dir,
            )
            raise
        return output

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        self.recalibrate_if_stale()
        return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        self.recalibrate_if_stale()
        return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def recalibrate_if_stale(self) -> None:
        if self.cls_statistics_step != self.state.global_step or self.estimates_never_updated_statistics():
            self.recalibrate_cls_batchnorm()

    # ---- logs ----

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # the mean wall time of the optimizer steps since the last training log, so that logs show how fast it ran
        if "loss" in logs:
            seconds = self.step_timer.seconds_per_step()
            if seconds is not None:
                logs["step_seconds"] = round(seconds, 4)
            self.log_nonfinite_cls_batches(logs)
        super().log(logs, start_time)

    def log_nonfinite_cls_batches(self, logs: dict[str, float]) -> None:
        """Count, in the training logs, the batches whose [CLS] BatchNorm inputs were not finite, and warn once.
        Read here, once per log, rather than in the forward, which stays free of host syncs and compilable."""
        count = nonfinite_cls_batches(self.model)
        if not count:
            return
        logs["nonfinite_cls_batches"] = count
        if not self.warned_nonfinite:
            self.warned_nonfinite = True
            logger.warning(
                "nonfinite_cls_batches=%d: %d training batch(es) so far brought NaN/Inf values to a [CLS] BatchNorm. "
                "In training it normalizes [CLS] with the statistics of the whole batch, so every sample of such a "
                "batch, the clean ones too, got NaN outputs and a NaN loss; its running statistics were left as they "
                "were. Find the non-finite inputs (e.g. NaN pixels or features) and fix or drop them.", count, count
            )

    # ---- resuming ----

    def interrupted_message(self) -> str:
        """What an interrupted training run says: where it stopped and how to go on."""
        stopped = f"Training interrupted at step {self.state.global_step} of {self.state.max_steps}."
        last = last_complete_checkpoint(self.args.output_dir)
        if last is None:
            return f"{stopped} No checkpoint was saved yet (--save_strategy / --save_steps): a rerun starts over."
        return (f"{stopped} The last complete checkpoint is {last}: rerun the same command with "
                "--resume_from_checkpoint true to continue from it.")  # fmt: skip

    def complete_checkpoint(self, resume_from_checkpoint: str | bool | None) -> str | None:
        """The checkpoint `train` resumes from (`resumed_checkpoint`)."""
        return resumed_checkpoint(resume_from_checkpoint, self.args.output_dir)

    # ---- the Hub ----

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        super().init_hf_repo(token=token, private=private)
        branch = self.args.hub_revision
        if self.is_world_process_zero() and branch and not branch.startswith("refs/pr/"):
            # the Trainer commits to `hub_revision` and the Hub refuses commits to a branch that does not exist
            token = token if token is not None else self.args.hub_token
            hf_api().create_branch(self.hub_model_id, branch=branch, token=token, exist_ok=True)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # The Trainer pushes the output folder after copying only the config and weights into it from the
        # checkpoint; the config's auto_map names the modeling code, which must travel with it.
        if self.is_world_process_zero():
            for code_file in Path(checkpoint_folder).glob("*.py"):
                shutil.copy(code_file, self.args.output_dir)
        with _uploads_leaving_out(NOT_PUSHED, self.check_pushed_code):
            super()._push_from_checkpoint(checkpoint_folder)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        super().save_model(output_dir, _internal_call)
        if output_dir is None or Path(output_dir).resolve() == Path(self.args.output_dir).resolve():
            self.saved_as = (self.state.global_step, self.re_estimations)

    def saved_model_is_current(self) -> bool:
        """Whether the weights in output_dir are the model as it is now (saved by this run, unchanged since)."""
        return self.saved_as == (self.state.global_step, self.re_estimations)

    def push_to_hub(self, *args, **kwargs):
        with _uploads_leaving_out(NOT_PUSHED, self.check_pushed_code):
            return super().push_to_hub(*args, **kwargs)

    def pushed_code(self, folder: str | Path, ignore_patterns: list[str] | tuple[str, ...] = NOT_PUSHED):
        """The code files of `folder` a push uploads (`checks.code_summary`), and those of them that differ from
        the installed package's; None for a model of no SepNorm family (a PEFT adapter's folder has no code)."""
        from huggingface_hub.utils import filter_repo_objects

        from ..families import FAMILIES
        from ..hub.checks import folder_code_files, modified_code_files

        config = getattr(self.accelerator.unwrap_model(self.model), "config", None)
        family = FAMILIES.get(getattr(config, "model_type", None))
        if family is None:
            return None
        folder = Path(folder)
        paths = [path.relative_to(folder).as_posix() for path in folder.glob("*.py")]
        files = list(filter_repo_objects(paths, ignore_patterns=ignore_patterns))
        return folder_code_files(folder, files, family), modified_code_files(folder, files, family)

    def check_pushed_code(self, folder: str, ignore_patterns: list[str]) -> None:
        """Refuse, before the upload, code files that are not the installed package's, unless
        `hub_modified_code_is_mine` (then the card, written before, says so)."""
        from huggingface_hub import ModelCard

        from ..hub.cards import card_code_sha256
        from ..hub.checks import refuse_modified_code

        pushed = self.pushed_code(folder, ignore_patterns)
        if pushed and pushed[1] and not sepnorm_option(self.args, "hub_modified_code_is_mine"):
            readme = Path(folder) / "README.md"
            card_code = card_code_sha256(ModelCard.load(readme)) if readme.is_file() else {}
            refuse_modified_code(Path(folder), pushed[1], card_code, mine="pass --hub_modified_code_is_mine")

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
        eval_split: str | None = None,
        data_files: dict[str, str] | None = None,
    ) -> None:
        """Write this package's model card to `output_dir/README.md` (what `push_to_hub` publishes): usage with
        `trust_remote_code`, the [CLS] BatchNorm caveats, the training recipe and the evaluation results of the run.

        As in transformers' example scripts, `dataset_tags` is the Hub id of the data set (give it only where there
        is one) and `dataset_args` its configuration. `base_model` is the Hub checkpoint the model came from:
        `finetuned_from` (by default the config's `_name_or_path`, as the Trainer's card) when it is a Hub id, else
        the `base_model` of that local folder's own card (`hub_base_model`). `tasks` and `dataset` are accepted for
        the Trainer's signature; the card derives its task from the model class. `eval_split` names the split the
        metrics were measured on; `data_files` describes the user's own data by split (`train.csv` (440 rows)), for
        a run on no Hub data set; the card names the weights they describe (the sha256 of the weights this run
        saved in `output_dir`, when the model has not changed since: save the model first), and a folder that is also a sentence-transformers model gets that
        library's card. A PEFT model gets the SepNorm adapter card (`render_adapter_card`) over the metadata of
        peft's and the Trainer's."""
        from huggingface_hub import ModelCard

        from ..hub import hub_base_model, render_model_card
        from ..hub.cards import first_value, hub_repo_id, render_adapter_card, sentence_pooling, weights_sha256

        model = self.accelerator.unwrap_model(self.model)
        output_dir = Path(self.args.output_dir)
        eval_results = self.evaluation_results()
        repo_id = self.hub_model_id or self.args.hub_model_id or model_name or f"<your-namespace>/{output_dir.name}"
        if not isinstance(model, PreTrainedModel):  # a LoRA adapter: peft's metadata, the SepNorm adapter card
            # the base as the adapter names it, if a Hub id: the Trainer's card looks any name up on the Hub ("": none)
            base = hub_repo_id(model.peft_config[model.active_adapter].base_model_name_or_path) or ""
            super().create_model_card(
                language, license, tags, model_name, base, tasks, dataset_tags, dataset, dataset_args
            )
            if self.is_world_process_zero():
                card = ModelCard.load(output_dir / "README.md")
                render_adapter_card(model, repo_id=repo_id, revision=self.args.hub_revision or "main",
                                    eval_results=eval_results, card=card, dataset_name=first_value(dataset_tags),
                                    task_name=first_value(dataset_args), eval_split=eval_split,
                                    ).save(output_dir / "README.md")  # fmt: skip
            return
        if not self.is_world_process_zero():
            return
        card = render_model_card(
            model,
            repo_id=repo_id,  # not pushed: a placeholder the reader fills in, not the output folder's name as an id
            eval_results=eval_results,
            dataset_name=first_value(dataset_tags),
            task_name=first_value(dataset_args),
            eval_split=eval_split,
            data_files=data_files,
            weights=weights_sha256(output_dir) if eval_results and self.saved_model_is_current() else None,
            base_model=hub_base_model(finetuned_from or getattr(model.config, "_name_or_path", None)),
            base_model_relation="finetune" if self.state.global_step else None,
            sentence_pooling=sentence_pooling(output_dir),
            **self.card_code(output_dir),
            language=language,
            training_summary={
                "max_steps": self.state.max_steps,
                "learning_rate": self.args.learning_rate,
                "per_device_train_batch_size": self.args.per_device_train_batch_size,
                "processes": self.args.world_size,
                "seed": self.args.seed,
                "bf16": self.args.bf16,
                **getattr(model, CARD_NOTES, {}),
            },
            revision=self.args.hub_revision or "main",
            **({"license": license} if license else {}),
        )
        for tag in [tags] if isinstance(tags, str) else tags or []:
            if tag not in card.data.tags:
                card.data.tags.append(tag)
        card.save(output_dir / "README.md")

    def card_code(self, output_dir: Path) -> dict:
        """The code section of the card: the code files saved in `output_dir` (what a push uploads), if any."""
        from ..hub.checks import code_summary

        pushed = self.pushed_code(output_dir)
        if not pushed or not pushed[0]:
            return {}
        files, modified = pushed
        return {"code": code_summary(files), "code_modified": modified}

    def evaluation_results(self) -> dict[str, float]:
        """The latest value of every `eval_*` entry the run logged (all eval datasets, resumed runs included), as
        the Trainer names them; `render_model_card` picks the ones that measure the model."""
        return {
            key: value for entry in self.state.log_history for key, value in entry.items() if key.startswith("eval_")
        }


class StepTimer(TrainerCallback):
    """Wall time of the optimizer steps (forward, backward, update; not evaluation or saving), read per log."""

    def __init__(self):
        self.seconds, self.steps, self.started = 0.0, 0, None

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.started is not None:
            self.seconds += time.perf_counter() - self.started
            self.steps += 1
            self.started = None

    def seconds_per_step(self) -> float | None:
        """The mean over the steps since the last call, then starts again."""
        mean = self.seconds / self.steps if self.steps else None
        self.seconds, self.steps = 0.0, 0
        return mean


def sepnorm_option(args, name: str):
    """A `SepNormTrainingArguments` option, with its default for a plain `TrainingArguments`."""
    return getattr(args, name, getattr(SepNormTrainingArguments, name))
