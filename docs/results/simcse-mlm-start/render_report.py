#!/usr/bin/env python
"""Render report.md from runs/ (written by run_experiment.py), as README.md's plan reads it. No number is typed by
hand; a partial experiment renders as partial (a stage not run says so).

    python docs/results/simcse-mlm-start/render_report.py
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE))

from run_experiment import (  # noqa: E402
    ARMS, EVAL_STEPS, MLM_RECIPE, PILOT_KEY, PILOT_MAX_STEPS, PRIMARY, REQUIRED_GAIN, SEEDS, mean_of_last, step_count,
)

from hf_sepnorm.compare.report import wilcoxon_cell  # noqa: E402
from hf_sepnorm.compare.statistics import holm_adjusted, holm_verdict, paired_comparison  # noqa: E402

STANDARDIZED, MEAN_POOLING = f"{PRIMARY}_standardized_cls", f"{PRIMARY}_mean_pooling"
FAMILY = [("batch-final", PRIMARY, "[CLS]"), ("batch-all", STANDARDIZED, "standardized [CLS] (the control)"),
          ("batch-all", MEAN_POOLING, "mean pooling")]  # fmt: skip
DESCRIPTIVE = [("batch-all", "eval_stsb_dev_spearman", "[CLS], dev pairs"),
               ("batch-final", "eval_stsb_dev_spearman", "[CLS], dev pairs"),
               ("batch-final", f"{PRIMARY}_standardized_cls", "standardized [CLS]")]  # fmt: skip


def read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def last_three(record: dict, key: str) -> float | None:
    return mean_of_last(record["curve"], key, record["steps"])


def comparison(trained: dict, arm: str, key: str):
    seeds = sorted(set(trained.get(arm, {})) & set(trained.get("shared", {})))
    if len(seeds) < 2:
        return None
    return paired_comparison([last_three(trained["shared"][seed], key) for seed in seeds],
                             [last_three(trained[arm][seed], key) for seed in seeds], True)  # fmt: skip


def cells(result) -> str:
    return (f"{result.n} | {result.mean_difference:+.2f} | [{result.ci_low:+.2f}, {result.ci_high:+.2f}] | "
            f"{result.t_p:.3g} | {wilcoxon_cell(result.__dict__)}")  # fmt: skip


def verdict(result, holm_p: float | None = None) -> str:
    if result.n < len(SEEDS):
        return f"preliminary (n = {result.n} of {len(SEEDS)}, no verdict)"
    return result.verdict if holm_p is None else holm_verdict({**result.__dict__, "holm_p": holm_p}, True)


def diagnostics(folder: Path, start: dict | None, planned_pilot: dict | None, mlm: dict) -> list[str]:
    """README.md's "After the pilot": what the records of diagnose_pilot.py say (no verdict on SepNorm)."""
    baselines = read(folder / "baselines.json")
    pilots = [read(path) for path in sorted(folder.glob("pilot-lr*.json"))]
    if baselines is None and not pilots:
        return []
    lines = ["## After the pilot: why `shared` did not move (diagnostics, no verdict on SepNorm)", "",
             "| what | train pairs | dev pairs |", "|---|---|---|"]  # fmt: skip
    if start:
        lines.append(f"| `shared`'s MLM start, [CLS] | {start['metrics'][PRIMARY]:.2f} | {start['metrics'][PILOT_KEY]:.2f} |")
        lines.append(f"| `shared`'s MLM start, mean pooling | {start['metrics'][PRIMARY + '_mean_pooling']:.2f} | "
                     f"{start['metrics'][PILOT_KEY + '_mean_pooling']:.2f} |")  # fmt: skip
    if baselines:
        lines.append(f"| raw input: {baselines['baseline']} | {baselines['stsb_train_spearman']:.2f} | "
                     f"{baselines['stsb_dev_spearman']:.2f} |")  # fmt: skip
    lines.append("")
    for pilot in pilots:
        rate, curve = pilot["recipe"]["learning_rate"], pilot["curve"]
        best = max(curve, key=lambda entry: entry[PILOT_KEY])
        gain = None if start is None else max(
            (value for entry in curve if (value := mean_of_last(curve, PILOT_KEY, entry["step"])) is not None),
            default=None)  # fmt: skip
        lines += [f"The pilot at lr {rate:g} (every other setting as planned): dev Spearman {curve[0][PILOT_KEY]:.2f} at "
                  f"step {curve[0]['step']}, {curve[-1][PILOT_KEY]:.2f} at step {curve[-1]['step']}, best "
                  f"{best[PILOT_KEY]:.2f} at step {best['step']}"
                  + ("" if gain is None else f"; best mean of three {gain:.2f}, "
                     f"{gain - start['metrics'][PILOT_KEY]:+.2f} from the start (5 needed)") + ".", "",
                  "| step | " + " | ".join(str(entry["step"]) for entry in curve[1::2]) + " |",
                  "|---|" + "---|" * len(curve[1::2]),
                  "| dev [CLS] | " + " | ".join(f"{entry[PILOT_KEY]:.2f}" for entry in curve[1::2]) + " |", ""]  # fmt: skip
    every = [pilot for pilot in (planned_pilot, *pilots) if pilot]
    if start and baselines and pilots and not any(step_count(pilot, start) for pilot in every):
        below = start["metrics"][PILOT_KEY] < baselines["stsb_dev_spearman"]
        fell = all(pilot["curve"][0][PILOT_KEY] < start["metrics"][PILOT_KEY] for pilot in every)
        rates = ", ".join(f"{pilot['recipe']['learning_rate']:g}" for pilot in every)
        climbing = all(pilot["curve"][-1][PILOT_KEY] > pilot["curve"][len(pilot["curve"]) // 2][PILOT_KEY] for pilot in every)
        lines += [f"**Reading.** At none of the learning rates tried ({rates}) does SimCSE lift `shared`'s [CLS] the "
                  f"{REQUIRED_GAIN:g} points the plan needs within {PILOT_MAX_STEPS:,} steps"
                  + ("; each falls below the start by its first evaluation" if fell else "")
                  + ("; each is still climbing at the end, so a longer run might pass the start" if climbing else "")
                  + ". The rate is therefore not what stopped it"
                  + (f". The start is weak: its [CLS] scores below the bag-of-words baseline (a masked-LM model "
                     f"pretrained for {mlm['seconds'] / 3600:.1f} CPU-hours)" if below else "")
                  + ". The experiment has no verdict on SepNorm, and this budget cannot reproduce the paper's protocol "
                  "(a masked-LM start that SimCSE moves far and fast); that needs a stronger masked-LM start, such as "
                  "`bert-base-uncased` in the paper's full-scale command.", ""]  # fmt: skip
    if start and every:
        plot_pilots(every, start["metrics"][PILOT_KEY], baselines)
        lines += ["![the pilots](pilots.png)", "",
                  "*Figure 1. `shared`'s [CLS] on the 1,500 STS-B dev pairs (Spearman x 100) during SimCSE from the "
                  "masked-LM start, one line per learning rate (seed 0). Dotted: the start (step 0); dashed: the start "
                  "plus the 5 points the plan needs; grey: the bag-of-words baseline (no model).*", ""]  # fmt: skip
    return lines


def plot_pilots(pilots: list[dict], start: float, baselines: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for pilot in pilots:
        steps = [0] + [entry["step"] for entry in pilot["curve"]]
        values = [start] + [entry[PILOT_KEY] for entry in pilot["curve"]]
        axis.plot(steps, values, marker="o", markersize=3, label=f"lr {pilot['recipe']['learning_rate']:g}")
    axis.axhline(start, color="black", linestyle=":", label="start")
    axis.axhline(start + REQUIRED_GAIN, color="black", linestyle="--", label=f"start + {REQUIRED_GAIN:g} (needed)")
    if baselines:
        axis.axhline(baselines["stsb_dev_spearman"], color="grey", label="bag of words")
    axis.set_xlabel("SimCSE step")
    axis.set_ylabel("STS-B dev Spearman x 100, [CLS]")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(HERE / "pilots.png", dpi=110)
    plt.close(figure)


def render(runs: Path) -> str:
    lines = ["# SimCSE from a start that can move: ShareNorm MLM pretraining here, then SepNorm inserted", "",
             "Generated by `render_report.py` from `runs/` (written by `run_experiment.py`); the plan, fixed before "
             "any run, is [README.md](README.md).", ""]  # fmt: skip
    mlm = read(runs / "mlm" / "pretraining.json")
    lines += ["## 1. Masked-LM pretraining (ShareNorm)", ""]
    if mlm is None:
        lines += ["**Not run yet.** Nothing below can be measured before it.", ""]
        return "\n".join(lines)
    loss, unigram = mlm["metrics"]["eval_loss"], mlm["unigram_eval_loss"]
    learned = loss < unigram
    resumed = mlm.get("resumed_from") or []
    timing = (f"{mlm['seconds'] / 3600:.1f} h in the process that finished it, resumed from {', '.join(resumed)}"
              if resumed else f"{mlm['seconds'] / 3600:.1f} h")
    lines += [f"{MLM_RECIPE['max_steps']} steps, {timing}. Held-out MLM loss {loss:.3f} against "
              f"{unigram:.3f} for the unigram predictor on the same blocks: "
              + ("**below it, the pretraining learned** (the gate passes)." if learned else
                 "**not below it: the pretraining did not learn; the experiment has no verdict.**"),
              "", "| step | held-out MLM loss |", "|---|---|",
              *(f"| {entry['step']} | {entry['eval_loss']:.3f} |" for entry in mlm["curve"]), ""]  # fmt: skip
    starts = {arm: read(runs / arm / "untrained.json") for arm in ARMS}
    lines += ["## 2. Each arm's start (step 0)", ""]
    if not all(starts.values()):
        lines += ["Not all run yet: " + ", ".join(f"`{arm}`" for arm, record in starts.items() if record is None), ""]
    shown_starts = {arm: record["metrics"] for arm, record in starts.items() if record}
    if shown_starts:
        lines += ["SepNorm inserted into the MLM checkpoint, the [CLS] statistics estimated on training sentences, no "
                  "SimCSE step. Spearman x 100 of cosines on the STS-B pairs.", "",
                  "| arm | train pairs, [CLS] | head start | dev pairs, [CLS] | dev, mean pooling | "
                  "dev, standardized [CLS] |", "|---|---|---|---|---|---|",
                  *(f"| `{arm}` | {m[PRIMARY]:.2f} | "
                    + (f"{m[PRIMARY] - shown_starts['shared'][PRIMARY]:+.2f}" if "shared" in shown_starts else "–")
                    + f" | {m[PILOT_KEY]:.2f} | {m[PILOT_KEY + '_mean_pooling']:.2f} | "
                      f"{m[PILOT_KEY + '_standardized_cls']:.2f} |" for arm, m in shown_starts.items()), ""]  # fmt: skip
    pilot = read(runs / "pilot" / "shared-seed0.json")
    steps = step_count(pilot, starts["shared"]) if pilot and starts["shared"] else None
    lines += ["## 3. The step count (pilot, `shared` seed 0, dev pairs)", ""]
    if pilot is None or starts["shared"] is None:
        lines += ["Not run yet.", ""]
    else:
        start = starts["shared"]["metrics"][PILOT_KEY]
        lines += [f"Start {start:.2f}; required: the mean of the last three dev evaluations at least {REQUIRED_GAIN:g} "
                  f"points above it, within {PILOT_MAX_STEPS} steps. "
                  + (f"**S = {steps}**." if steps else "**No step reaches it: the experiment stops without a verdict.**"),
                  "", "| step | dev Spearman | mean of last three |", "|---|---|---|",
                  *(f"| {e['step']} | {e[PILOT_KEY]:.2f} | "
                    + (f"{v:.2f}" if (v := mean_of_last(pilot['curve'], PILOT_KEY, e['step'])) is not None else "–") + " |"
                    for e in pilot["curve"]), ""]  # fmt: skip
    trained = {arm: {seed: record for seed in SEEDS if (record := read(runs / arm / f"seed{seed}.json"))} for arm in ARMS}
    finished = sum(len(by_seed) for by_seed in trained.values())
    lines += ["## 4. The comparison", ""]
    if not finished:
        stopped = pilot is not None and starts["shared"] is not None and steps is None
        lines += ["Not run: the pilot's rule stopped the experiment (README.md)." if stopped else "Not run yet.", ""]
        return "\n".join(lines + diagnostics(runs / "diagnostics", starts["shared"], pilot, mlm))
    if finished < len(ARMS) * len(SEEDS):
        lines += [f"**PARTIAL RESULTS: {finished} of {len(ARMS) * len(SEEDS)} runs** ("
                  + ", ".join(f"`{arm}` {len(trained[arm])}" for arm in ARMS) + ").", ""]  # fmt: skip
    steps = next(record for by_seed in trained.values() for record in by_seed.values())["steps"]  # as the runs ran
    lines += ["Head start: the arm's start minus `shared`'s. Training gain: the mean of the last three evaluations "
              f"(steps {steps - 2 * EVAL_STEPS}–{steps}) minus the arm's own start. Spearman x 100, STS-B train pairs.",
              "", "| arm | seeds | start | head start | mean of last three (mean ± sd) | training gain (95 % CI) | "
              "gain − `shared`'s, paired |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    shared_gain = {seed: last_three(r, PRIMARY) - starts["shared"]["metrics"][PRIMARY] for seed, r in trained["shared"].items()}
    for arm in ARMS:
        if not trained[arm] or starts[arm] is None:
            continue
        start = starts[arm]["metrics"][PRIMARY]
        values = {seed: last_three(record, PRIMARY) for seed, record in trained[arm].items()}
        gains = {seed: value - start for seed, value in values.items()}
        spread = f"{statistics.mean(values.values()):.2f} ± {statistics.stdev(values.values()):.2f}" if len(values) > 1 else f"{next(iter(values.values())):.2f}"
        gain = paired_comparison([0.0] * len(gains), list(gains.values()), True) if len(gains) > 1 else None
        paired = sorted(set(gains) & set(shared_gain))
        versus = (paired_comparison([shared_gain[s] for s in paired], [gains[s] for s in paired], True)
                  if arm != "shared" and len(paired) > 1 else None)  # fmt: skip
        show = lambda r: "–" if r is None else f"{r.mean_difference:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]"  # noqa: E731
        lines.append(f"| `{arm}` | {len(values)} | {start:.2f} | {start - starts['shared']['metrics'][PRIMARY]:+.2f} | "
                     f"{spread} | {show(gain)} | {show(versus)} |")
    lines += ["", "| row | arm − shared | metric | n | mean difference | 95 % CI | t p | Wilcoxon p | Holm p | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    primary = comparison(trained, "batch-all", PRIMARY)
    if primary:
        lines.append(f"| **primary** | `batch-all` | [CLS] | {cells(primary)} | – | **{verdict(primary)}** |")
    family = [(arm, key, label, comparison(trained, arm, key)) for arm, key, label in FAMILY]
    family = [row for row in family if row[3] is not None]
    for (arm, key, label, result), holm_p in zip(family, holm_adjusted([row[3].t_p for row in family])):
        lines.append(f"| secondary | `{arm}` | {label} | {cells(result)} | {holm_p:.3g} | {verdict(result, holm_p)} |")
    for arm, key, label in DESCRIPTIVE:
        if result := comparison(trained, arm, key):
            lines.append(f"| descriptive | `{arm}` | {label} | {cells(result)} | – | (no verdict) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    (HERE / "report.md").write_text(render(HERE / "runs"))
    print(f"wrote {HERE / 'report.md'}")


if __name__ == "__main__":
    main()
