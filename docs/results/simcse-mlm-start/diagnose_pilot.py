#!/usr/bin/env python
"""Why the pilot did not move `shared` (README.md, "After the pilot"): written after the pilot stopped the experiment,
before any of these ran. Nothing here gives a verdict on SepNorm; each record is written as it finishes.

1. runs/diagnostics/baselines.json: the raw-input baseline on the same STS-B pairs, the Spearman x 100 of the cosine
   of the two sentences' bag-of-words counts (lower-cased words; no model), which a sentence encoder has to beat;
2. runs/diagnostics/pilot-lr3e-05.json: the pilot again with one change, SimCSE's learning rate for BERT-base (3e-5,
   the rate of the paper's SimCSE runs) instead of 1e-4: the recipe's rate, ruled in or out as the cause.

    nice -n 19 env OMP_NUM_THREADS=1 nohup python docs/results/simcse-mlm-start/diagnose_pilot.py > diagnose.log 2>&1 &
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[2]))
sys.path.insert(0, str(HERE))

import run_experiment  # noqa: E402
from experiment_runner import parse_options, work_through  # noqa: E402

DIAGNOSTIC_LEARNING_RATE = 3e-5


def bag_of_words_spearman(pairs: dict) -> float:
    import numpy as np
    from scipy.stats import spearmanr

    def cosine(first: str, second: str) -> float:
        a, b = (Counter(re.findall(r"\w+", text.lower())) for text in (first, second))
        dot = sum(count * b[word] for word, count in a.items())
        norm = np.sqrt(sum(c * c for c in a.values()) * sum(c * c for c in b.values()))
        return dot / norm if norm else 0.0

    scores = [cosine(first, second) for first, second in zip(pairs["sentence1"], pairs["sentence2"])]
    return 100 * spearmanr(scores, pairs["label"]).statistic


def baselines(data_dir: Path) -> dict:
    from hf_sepnorm.scripts.simcse import load_sts_pairs

    started = time.time()
    pairs = load_sts_pairs(str(data_dir / "glue" / "STS-B"), None, None)  # keys stsb_dev, stsb_train: the runs' names
    return {"baseline": "bag-of-words cosine (lower-cased \\w+ words, counts)",
            **{f"{split}_spearman": bag_of_words_spearman(split_pairs) for split, split_pairs in pairs.items()},
            **{f"{split}_pairs": len(split_pairs["label"]) for split, split_pairs in pairs.items()},
            "seconds": round(time.time() - started, 1)}  # fmt: skip


def pilot_at_lower_rate(data_dir: Path, threads: int) -> dict:
    run_experiment.SIMCSE_RECIPE = {**run_experiment.SIMCSE_RECIPE, "learning_rate": DIAGNOSTIC_LEARNING_RATE}
    return run_experiment.simcse("shared", 0, run_experiment.PILOT_MAX_STEPS, data_dir, threads)


def main() -> None:
    options = parse_options(__doc__.splitlines()[0], HERE / "runs", "text/ and glue/STS-B")
    data_dir, folder = Path(options.data_dir), Path(options.results_dir) / "diagnostics"
    work_through([("raw-input baselines", folder / "baselines.json")], lambda name: baselines(data_dir),
                 lambda r: f"bag of words: train {r['stsb_train_spearman']:.2f}, dev {r['stsb_dev_spearman']:.2f}")
    scored = lambda r: f"dev {r['metrics'][run_experiment.PILOT_KEY]:.2f}"  # noqa: E731
    work_through([(f"pilot shared seed0 lr {DIAGNOSTIC_LEARNING_RATE:g}", folder / f"pilot-lr{DIAGNOSTIC_LEARNING_RATE:g}.json")],
                 lambda name: pilot_at_lower_rate(data_dir, options.threads), scored)  # fmt: skip


if __name__ == "__main__":
    main()
