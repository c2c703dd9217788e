"""Publish a saved SepNorm checkpoint folder (from `save_pretrained` or a Trainer's output folder) to the Hub.

The folder is checked first, before any request: a repo that cannot be loaded with `trust_remote_code=True` is never
published. It is pushed as one commit carrying the SepNorm model card as README.md, and read only: the local folder is
left byte-for-byte as it was, whether the push succeeds or fails.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from huggingface_hub import (
    CommitInfo,
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    constants,
    get_session,
    metadata_load,
)
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, HFValidationError, filter_repo_objects, validate_repo_id
from transformers.dynamic_module_utils import get_relative_imports

from ..families import FAMILIES, STOCK_MODEL_TYPES, SepNormFamily
from .cards import (
    card_code_sha256,
    code_section,
    first_value,
    hub_repo_id,
    measured_weights,
    render_model_card,
    retarget_card,
    sentence_pooling,
    weights_sha256,
    with_code_section,
)
from .checks import (
    CheckpointFolderError,
    check_card_names_no_local_path,
    check_weights_match_config,
    code_summary,
    folder_code_files,
    modified_code_files,
    refuse_modified_code,
)
from .http_client import hub_http_client

logger = logging.getLogger(__name__)

# huggingface_hub sends its requests without a timeout: a Hub that stops answering would block a push forever.
DEFAULT_TIMEOUT = 300.0

NOT_PUBLISHED = [
    "README.md",  # replaced by the SepNorm model card
    "checkpoint-*/",  # the Trainer's intermediate checkpoints
    "runs/",  # TensorBoard logs
    # pickles (optimizer, scheduler and RNG states, training_args.bin, torch.save'd weights): loading one runs code
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    *DEFAULT_IGNORE_PATTERNS,
]

# Weights a previous push may have left on the branch. transformers loads model.safetensors before any sharded index:
# a stale one would shadow new sharded weights, so the commit deletes those the folder no longer has.
WEIGHT_FILES = ["*.safetensors", "*.safetensors.index.json"]


class HubPushError(RuntimeError):
    """A step of a push failed on the Hub's side (an error answer after huggingface_hub's retries, or no answer)."""


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    card: ModelCard | None = None,
    create_pr: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    modified_code_is_mine: bool = False,
) -> CommitInfo:
    """Push the SepNorm checkpoint saved in `folder` to the Hub repo `repo_id` as one commit; returns its info.

    The repo is created if needed (`private` applies to a new repo only), and so is the branch `revision`. The commit
    holds the safetensors weights, config.json, the modeling code files, the tokenizer or image processor files and
    the other files of the folder, except checkpoint-*/, runs/, pickles (optimizer states, training_args.bin, *.bin
    weights) and the folder's README.md: the README.md pushed is `card`, else the folder's own SepNorm card (as
    the package's Trainer or `hf-sepnorm convert` wrote it, or the user edited it) with its snippets naming
    `repo_id` and `revision`, else the SepNorm card rendered from the folder's config, its eval results
    (eval_results.json or all_results.json) and the data set and base model a Trainer-written README.md names. A
    card whose metrics were measured on weights other than the folder's is refused. Safetensors weights the branch
    holds and the folder does not are deleted. A branch that held a model gets a new version: the commit it replaces
    is logged (a warning), and stays in the repo's history.
    Before any request, the folder's code files must be the installed package's (`modified_code_is_mine=True`
    pushes the user's changes, and the card says so), and every weights file must read in full and match the
    config; the card's code section lists the code files pushed, with their sha256.
    `create_pr` opens a pull request against `revision` instead of committing to it. `timeout` bounds every request,
    in seconds (None: wait forever).

    Raises `CheckpointFolderError` before any request if the folder cannot be published as it is, and
    `HubPushError` naming the repo and the failed step if the Hub answers an error or does not answer in time.
    """
    folder = Path(folder)
    family = check_checkpoint_folder(folder)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise CheckpointFolderError(f"{repo_id!r} is no Hub repo id: {error} Use 'namespace/name'.") from None
    files = files_to_publish(folder)
    modified = check_code_is_the_packages(folder, files, family, modified_code_is_mine)
    check_weights_match_config(folder, family)
    branch = revision or constants.DEFAULT_REVISION
    card = card if card is not None else card_for_folder(folder, family, repo_id, branch)
    readme = str(with_code_section(card, code_section(code_summary(folder_code_files(folder, files, family)), modified)))
    check_card_names_no_local_path(folder, readme)
    api = HfApi(token=token)
    with requests_timing_out_after(timeout):
        with hub_step(folder, repo_id, "creating the repository"):
            repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if branch != constants.DEFAULT_REVISION and not branch.startswith("refs/pr/"):
            with hub_step(folder, repo_id, f"creating the branch {branch!r}"):
                api.create_branch(repo_id, branch=branch, exist_ok=True)
        with hub_step(folder, repo_id, f"reading {branch!r}"):
            head = api.model_info(repo_id, revision=branch)
        remote_weights = set(filter_repo_objects([file.rfilename for file in head.siblings or []],
                                                 allow_patterns=WEIGHT_FILES))  # fmt: skip
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=folder / path) for path in files]
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=readme.encode()))
        operations += [CommitOperationDelete(path_in_repo=path) for path in sorted(remote_weights - set(files))]
        with hub_step(folder, repo_id, f"the commit of {len(files) + 1} files to {branch!r}"):
            commit = api.create_commit(
                repo_id,
                operations,
                commit_message=commit_message or f"Upload SepNorm {family.name} checkpoint",
                revision=revision,
                create_pr=create_pr,
            )
    if remote_weights and not create_pr:  # a new version of the repo's model: the old one is not lost, but say so
        logger.warning(
            "%s: %r held a model (commit %s), which this commit replaces; it stays in the repo's history (load it "
            "with revision=%r).", repo_id, branch, head.sha, head.sha
        )
    return commit


def check_checkpoint_folder(folder: Path) -> SepNormFamily:
    """The folder's family, once checked that the folder holds a loadable SepNorm checkpoint."""
    config = read_config(folder)
    family = FAMILIES.get(config.get("model_type"))
    if family is None:
        model_type = config.get("model_type")
        fix = (f" Convert it first: `hf-sepnorm convert {folder} <new folder> --calibration_file <texts or images>`, "
               "then push that folder."
               if model_type in STOCK_MODEL_TYPES else "")  # fmt: skip
        raise CheckpointFolderError(
            f"{folder}/config.json has model_type={model_type!r}: not a SepNorm checkpoint "
            f"(expected one of {', '.join(FAMILIES)}).{fix}"
        )
    auto_map = config.get("auto_map") or {}
    check_auto_map(folder, auto_map, family)
    check_code_files(folder, auto_map)
    check_weights(folder)
    preprocessor = family.preprocessor
    if not (folder / preprocessor.config_file).is_file():
        raise CheckpointFolderError(
            f"{folder} has no {preprocessor.config_file}: save the {family.name} preprocessing next to the model with "
            f"`{preprocessor.kind}.save_pretrained(folder)`."
        )
    return family


def check_code_is_the_packages(folder: Path, files: list[str], family: SepNormFamily, modified_is_mine: bool
                               ) -> list[str]:  # fmt: skip
    """The code files among `files` that differ from the installed package's: refused unless `modified_is_mine`."""
    modified = modified_code_files(folder, files, family)
    if modified and not modified_is_mine:
        readme = folder / "README.md"
        refuse_modified_code(folder, modified, card_code_sha256(ModelCard.load(readme)) if readme.is_file() else {})
    return modified


def read_config(folder: Path) -> dict:
    if not folder.is_dir():
        raise CheckpointFolderError(f"{folder} is not a folder.")
    path = folder / constants.CONFIG_NAME
    if not path.is_file():
        raise CheckpointFolderError(f"{folder} has no config.json: save the model there with `save_pretrained`.")
    return json.loads(path.read_text(encoding="utf-8"))


def check_auto_map(folder: Path, auto_map: dict, family: SepNormFamily) -> None:
    wrong = {
        auto: reference for auto, reference in family.expected_auto_map().items() if auto_map.get(auto) != reference
    }
    if wrong:
        listed = ", ".join(f"{auto} -> {reference}" for auto, reference in wrong.items())
        raise CheckpointFolderError(
            f"The auto_map of {folder}/config.json does not list the SepNorm {family.name} classes (missing or "
            f"different: {listed}): trust_remote_code=True could not load them. Save the model with hf_sepnorm's "
            "`save_pretrained`, which writes them."
        )


def check_code_files(folder: Path, auto_map: dict) -> None:
    missing = sorted(missing_code_files(folder, auto_map))
    if missing:
        raise CheckpointFolderError(
            f"The modeling code files {', '.join(missing)} referenced by the auto_map of {folder}/config.json (or "
            "imported by those files) are missing from the folder: trust_remote_code=True could not load the "
            "model. Save the model with hf_sepnorm's `save_pretrained`, which copies them next to the weights."
        )


def missing_code_files(folder: Path, auto_map: dict) -> set[str]:
    """The code files the auto_map's classes need, with the files they import (as transformers resolves them),
    that the folder lacks."""
    references = [value for values in auto_map.values() for value in (values if isinstance(values, list) else [values])]
    # "other/repo--module.Class" is code hosted in another repo
    pending = [reference.rsplit(".", 1)[0] for reference in references if reference and "--" not in reference]
    seen, missing = set(), set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = folder / f"{module}.py"
        if path.is_file():
            pending.extend(get_relative_imports(path))
        else:
            missing.add(path.name)
    return missing


def check_weights(folder: Path) -> None:
    index = folder / constants.SAFETENSORS_INDEX_FILE
    if index.is_file():
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        missing = sorted(shard for shard in shards if not (folder / shard).is_file())
        if missing:
            raise CheckpointFolderError(f"{folder} lacks the weight shards {', '.join(missing)} its index lists.")
    elif not (folder / constants.SAFETENSORS_SINGLE_FILE).is_file():
        raise CheckpointFolderError(
            f"{folder} has no safetensors weights ({constants.SAFETENSORS_SINGLE_FILE} or "
            f"{constants.SAFETENSORS_INDEX_FILE}): save the model with `save_pretrained`. Pickled weights are never "
            "pushed."
        )


def files_to_publish(folder: Path) -> list[str]:
    """The folder's files that go to the Hub, as paths relative to it."""
    paths = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=NOT_PUBLISHED))


def card_for_folder(folder: Path, family: SepNormFamily, repo_id: str, revision: str) -> ModelCard:
    """The card pushed with `folder`: its own SepNorm card (written by the package's Trainer, `convert` or the user)
    kept as it is, edits, sections and metadata included, with its snippets pointed at `repo_id` and `revision`;
    else a SepNorm card rendered from the folder's config and saved results."""
    readme = folder / "README.md"
    if readme.is_file():
        card = ModelCard.load(readme)
        if "sepnorm" in (card.data.tags or []):
            check_card_describes_the_weights(folder, card)
            return retarget_card(card, repo_id, revision)
    # a Trainer's README.md names the data set and the model it started from, when it was told them
    trainer_card = (metadata_load(readme) if readme.is_file() else None) or {}
    return render_model_card(
        family.config_class.from_pretrained(folder),
        repo_id=repo_id,
        eval_results=trainer_results(folder),
        dataset_name=first_value(trainer_card.get("datasets")),
        base_model=hub_repo_id(first_value(trainer_card.get("base_model"))),  # a path means nothing on the Hub
        sentence_pooling=sentence_pooling(folder),
        revision=revision,
    )


def check_card_describes_the_weights(folder: Path, card: ModelCard) -> None:
    """Refuse a card whose metrics were measured on other weights than the folder's (they were replaced since)."""
    measured = measured_weights(card)
    if measured and measured != (saved := weights_sha256(folder)):
        raise CheckpointFolderError(
            f"{folder}/README.md reports metrics measured on weights with sha256 {shorten(measured)}, and the folder "
            f"holds {shorten(saved)}: the weights changed since these metrics were measured, or the file is damaged: "
            "re-run evaluation (the scripts' --do_eval writes a new card)."
        )


def shorten(weights: dict[str, str]) -> str:
    return ", ".join(f"{name} {digest[:12]}" for name, digest in weights.items()) or "none"


def trainer_results(folder: Path) -> dict:
    """The results the Trainer saved (`eval_results.json`, else `all_results.json`), as saved: `render_model_card`
    keeps the metrics among them."""
    for name in ("eval_results.json", "all_results.json"):
        path = folder / name
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return {}


@contextlib.contextmanager
def requests_timing_out_after(seconds: float | None) -> Iterator[None]:
    """Give up on a Hub request that gets no answer for `seconds`, for the duration of the block.

    huggingface_hub shares one HTTP client, created without a timeout, and offers no timeout for commits: the limit
    is set on that client and restored afterwards (it applies to the process's other Hub requests meanwhile)."""
    session = get_session()
    previous = session.timeout
    if seconds is not None:
        session.timeout = hub_http_client().Timeout(seconds)
    try:
        yield
    finally:
        session.timeout = previous


@contextlib.contextmanager
def hub_step(folder: Path, repo_id: str, step: str) -> Iterator[None]:
    """Turn a failure of the Hub requests in the block into a `HubPushError` naming the repo and the step."""
    try:
        yield
    except hub_http_client().TimeoutException as error:
        raise HubPushError(
            f"Pushing {folder} to the Hub repo {repo_id!r}: {step} got no answer in time ({error!r}). It may still "
            "have been applied: check the repo before pushing again. The local folder was not modified."
        ) from error
    except (hub_http_client().HTTPError, OSError) as error:  # HfHubHTTPError is such an HTTPError
        raise HubPushError(
            f"Pushing {folder} to the Hub repo {repo_id!r}: {step} failed: {error}. The local folder was not modified."
        ) from error
