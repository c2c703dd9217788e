#!/usr/bin/env python
"""Render docs/results/README.md from the `results.json` of each comparison folder here (every number comes from
them), and each folder's report.md again from its results.json.

    python docs/results/render.py
"""

import json
from pathlib import Path

from hf_sepnorm.compare.assessment import assess_track
from hf_sepnorm.compare.report import (
    convergence_lines,
    gate_lines,
    primary_metric,
    reestimation_lines,
    render_report,
    verdict_lines,
)

HERE = Path(__file__).parent
COMMANDS = {
    "image-digits-tiny": "OMP_NUM_THREADS=1 nice -n 10 hf-sepnorm compare --preset tiny --seeds 5 --recalibrate_cls_norm true "
    "--output_dir image-digits-tiny",
    "image-digits-tiny-no-reestimation": "OMP_NUM_THREADS=1 nice -n 10 hf-sepnorm compare --preset tiny --seeds 5 "
    "--recalibrate_cls_norm false --output_dir image-digits-tiny-no-reestimation",
    "glue-minilm": "OMP_NUM_THREADS=2 hf-sepnorm compare --preset small --pretrained_bert --glue_dir "
    "$SEPNORM_DATA_DIR/glue --finetune_steps 40 --finetune_learning_rate 2e-4 --output_dir glue-minilm",
}  # fmt: skip

INTRO = """# ShareNorm vs SepNorm on this project's machine (2 shared CPU cores)

Measured with `hf-sepnorm compare`, which trains every arm through the example scripts (`examples/run_mae.py`,
`run_image_classification.py`, `run_mlm.py`, `run_glue.py`) and reads out the frozen [CLS] embedding on held-out data
after a training-fitted per-feature standardization (linear probe with C chosen by cross-validation, 20-NN,
standardized uniformity and effective rank), so that the standardization a [CLS] BatchNorm applies by construction
cannot pass for a better representation. Each report gives baselines (chance, majority class, the probe on raw
inputs, the same architecture's [CLS] at random initialization), a validity gate (trained [CLS] must beat
random-init [CLS] in every arm, else the comparison rows read *inconclusive*), paired differences against `shared`
with 95 % intervals, paired t and exact Wilcoxon p-values, Holm-adjusted p-values, the smallest detectable
difference at 80 % power, and per-seed values. This page and the reports are rendered from the `results.json` files
(`python docs/results/render.py`).

SimCSE from the pretrained MiniLM (200 steps, 5 paired seeds of every arm; `batch-all` is BatchNorms inserted into
that LayerNorm model, not the paper's setting) is in [simcse-minilm/](simcse-minilm/report.md); its earlier 25-step
run, which moved too little to answer anything, stays in [simcse-minilm-25-steps/](simcse-minilm-25-steps/report.md).
The paper's text protocol at a small scale (a BERT pretrained here with ShareNorm masked LM, SepNorm inserted, then
SimCSE) is [simcse-mlm-start/](simcse-mlm-start/report.md): its plan, fixed before running, and how far it got.
GLUE fine-tuning from the same MiniLM at a budget that converges is in
[glue-minilm-converging/](glue-minilm-converging/report.md); its re-run with the recipe corrected (a regression head
starting at the label mean, the sound standardization control) is
[report-label-mean-head.md](glue-minilm-converging/report-label-mean-head.md), and whether a classification head
starting at the class prior matters, [report-class-prior-head.md](glue-minilm-converging/report-class-prior-head.md).
These replace the 40-step [glue-minilm/](glue-minilm/report.md) below as the GLUE answer, where STS-B and CoLA did not
converge. Each of these folders has its own runners and renderers.
"""


def main():
    lines = [INTRO]
    for folder in sorted(path.parent for path in HERE.glob("*/results.json")):
        summary = json.loads((folder / "results.json").read_text())
        (folder / "report.md").write_text(render_report(summary))
        lines += [f"## [{folder.name}]({folder.name}/report.md)", ""]
        if folder.name in COMMANDS:
            lines += ["```bash", COMMANDS[folder.name], "```", ""]
        lines += [f"{summary['seeds']} seeds × arms {', '.join(f'`{arm}`' for arm in summary['arms'])}; "
                  f"{summary['device']}; {summary['seconds'] / 60:.0f} min.", ""]  # fmt: skip
        for name, track in summary["tracks"].items():
            assessment = assess_track(track)
            lines += [f"**{track['title']}** — validity gate {'passed' if assessment.gate_passed else 'failed'} (the "
                      "track's [CLS], trained or the pretrained start, against the same network's [CLS] at random "
                      "initialization, linear probe, paired 95 % interval):", ""]
            lines += [f"- {line}" for line in gate_lines(track, assessment)] + [""]
            not_converged = convergence_lines(assessment)
            if not_converged:
                lines += ["Fine-tuning that did not converge (eval loss not below the constant predictor's; those "
                          "rows read inconclusive):", ""] + [f"- {line}" for line in not_converged] + [""]
            lines += ["Verdicts:", ""]
            comparisons = assessment.comparisons
            lines += [f"- {line}" for line in verdict_lines(track, comparisons)] + [""]
            decided = [(arm, key, row) for arm, rows in comparisons.items() for key, row in rows.items()
                       if row["verdict"] in ("better", "worse") and key != primary_metric(track)["key"]]  # fmt: skip
            if decided:
                lines += ["Other rows that differ (arm − shared; a secondary row after Holm correction over the arm's "
                          "secondary rows; details in the report):", ""]
                lines += [f"- `{arm}` {key}: {row['verdict']}, {row['mean_difference']:+.4f} "
                          f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]" for arm, key, row in decided] + [""]
            lines += reestimation_lines(assessment)
    lines += [
        "## How to read these numbers",
        "",
        "- CPU-sized runs (tiny models, minutes of training) on cores shared with other jobs: wall times are not speed "
        "measurements (see [benchmarks/](../../benchmarks/README.md)).",
        "- A verdict is read from the 95 % interval of the mean paired difference; *no detectable difference* comes with "
        "the smallest difference the run could have detected, which is the run's resolution, not a bound on the "
        "effect.",
        "",
    ]
    (HERE / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
