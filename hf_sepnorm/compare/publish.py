"""`hf-sepnorm compare --push_to_hub REPO_PREFIX`: each compared arm's seed-0 model, published with the card its
training script wrote (its own metrics, lineage and `model-index`) and a section holding the comparison it comes
from: the validity gate, the verdict lines and the paired table against `shared`, as the report renders them."""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub import ModelCard
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..errors import InputError
from ..hub.push import card_for_folder, check_checkpoint_folder, push_to_hub
from .assessment import assess_track
from .recipes import BASELINE_ARM
from .report import paired_table_lines, verdict_lines

logger = logging.getLogger(__name__)


def published_repo_id(repo_prefix: str, track: str, arm: str) -> str:
    return f"{repo_prefix}-{track}-{arm}"


def check_repo_prefix(repo_prefix: str, tracks: list[str], arms: list[str]) -> None:
    """Refuse, before any training, a prefix that cannot make the repo ids `published_repo_id` builds."""
    for track in tracks:
        for arm in arms:
            try:
                validate_repo_id(published_repo_id(repo_prefix, track, arm))
            except HFValidationError as error:
                raise InputError(f"--push_to_hub {repo_prefix}: {published_repo_id(repo_prefix, track, arm)!r} is no "
                                 f"Hub repo id ({error}). Give 'namespace/name-prefix'.") from None  # fmt: skip


def comparison_section(summary: dict, name: str, track: dict, arm: str) -> list[str]:
    """The card's section on the comparison the model comes from."""
    assessment = assess_track(track)
    lines = [
        "## ShareNorm vs SepNorm: the comparison this checkpoint comes from",
        "",
        f"This checkpoint is seed 0 of the arm `{arm}` ({summary['arm_descriptions'][arm]}) of `hf-sepnorm compare`, "
        f"track `{name}` ({track['title']}), preset `{summary['preset']}`: {summary['seeds']} seeds per arm, the "
        f"same seeds and recipe in every arm, only the [CLS] normalization differs. Its own metrics are above; "
        f"below, what the comparison measured, arm − `{BASELINE_ARM}` paired by seed. It holds at this budget only "
        f"({summary['note']}); the project's measured answer to \"does SepNorm help?\" is hf_sepnorm's README, "
        "\"Does SepNorm help?\".",
        "",
        f"Validity gate (pretraining beats its trivial predictor, trained [CLS] beats random-init [CLS] in every arm): "
        f"**{'passed' if assessment.gate_passed else 'failed: every row but the pretraining objective reads inconclusive'}**.",
        "",
        "Verdicts:",
        "",
        *[f"- {line}" for line in verdict_lines(track, assessment.comparisons)],
        "",
        *paired_table_lines(track, assessment.comparisons),
    ]
    return lines


def with_section(card: ModelCard, lines: list[str]) -> ModelCard:
    """`card` with the section `lines` before its citation (at its end if it has none)."""
    text, section = str(card), "\n".join(lines)
    if "\n## Citation" in text:
        return ModelCard(text.replace("\n## Citation", f"\n{section}\n## Citation", 1))
    return ModelCard(f"{text.rstrip()}\n\n{section}")


def publish_comparison(summary: dict, output_dir: Path, repo_prefix: str, arms: list[str], *, token: str | None = None,
                       private: bool | None = None) -> list[dict]:  # fmt: skip
    """Push seed 0's model of each of `arms` in every track to `{repo_prefix}-{track}-{arm}`; returns, per push, the
    track, arm, repo id and commit URL."""
    pushed = []
    for name, track in summary["tracks"].items():
        for arm in arms:
            folder = Path(output_dir) / "runs" / name / f"{arm}-seed0" / track["published_folder"]
            repo_id = published_repo_id(repo_prefix, name, arm)
            card = card_for_folder(folder, check_checkpoint_folder(folder), repo_id, "main")
            card = with_section(card, comparison_section(summary, name, track, arm))
            commit = push_to_hub(folder, repo_id, token=token, private=private, card=card,
                                 commit_message=f"SepNorm comparison: {name} track, arm {arm}, seed 0")  # fmt: skip
            logger.info("pushed %s to %s", folder, commit.commit_url)
            pushed.append({"track": name, "arm": arm, "repo_id": repo_id, "commit_url": commit.commit_url})
    return pushed
