#!/usr/bin/env python
"""Baselines of the SimCSE-on-MiniLM experiment, written to baselines.json (read by render_report.py):

- TF-IDF cosine of the raw words (fitted on the training sentences): what the input alone gives;
- the same architecture at random initialization ([CLS], mean pooling, standardized [CLS]), through
  examples/run_simcse.py --do_eval, as every arm is evaluated;
- a constant embedding: every cosine equal, Spearman undefined (reported as 0, chance).

    OMP_NUM_THREADS=1 python docs/results/simcse-minilm/baselines.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run_experiment  # noqa: E402


def tfidf_spearman(data_dir: Path, script) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    sentences = script.read_sentences([str(data_dir / name) for name in run_experiment.TRAIN_FILES], True,
                                      run_experiment.RECIPE["min_words"], True)["sentence"]  # fmt: skip
    vectorizer = TfidfVectorizer(lowercase=True).fit(sentences)
    pairs = script.load_sts_pairs(str(data_dir / "glue" / "STS-B"), None, None)
    result = {}
    for name, split in pairs.items():
        first, second = vectorizer.transform(split["sentence1"]), vectorizer.transform(split["sentence2"])
        cosine = np.asarray(first.multiply(second).sum(axis=1)).ravel()  # rows are L2-normalized
        result[f"eval_{name}_spearman"] = script.spearman_x100(cosine, split["label"])
    return result


def random_init_metrics(data_dir: Path, script) -> dict[str, float]:
    import torch
    from transformers import AutoTokenizer

    from hf_sepnorm import SepNormBertConfig, SepNormBertModel

    source = run_experiment.minilm_folder()
    with tempfile.TemporaryDirectory(prefix="simcse-random-init-") as work:
        torch.manual_seed(0)
        config = SepNormBertConfig.from_pretrained(source, cls_norm="shared")
        SepNormBertModel(config).save_pretrained(work)
        AutoTokenizer.from_pretrained(source).save_pretrained(work)
        arguments = ["--model_name_or_path", work, *run_experiment.data_arguments(data_dir),
                     *run_experiment.common_arguments(0, os.path.join(work, "run")),
                     "--standardization_samples", str(run_experiment.RECIPE["standardization_samples"]),
                     "--min_words", str(run_experiment.RECIPE["min_words"]), "--do_eval"]  # fmt: skip
        return script.main(arguments)


def main() -> None:
    data_dir = Path(os.environ["SEPNORM_DATA_DIR"])
    script = run_experiment.load_script()
    baselines = {
        "tfidf": tfidf_spearman(data_dir, script),
        "random_init": random_init_metrics(data_dir, script),
        "constant": {"eval_stsb_train_spearman": 0.0, "eval_stsb_dev_spearman": 0.0},
    }
    (HERE / "baselines.json").write_text(json.dumps(baselines, indent=2))
    print(json.dumps(baselines, indent=2))


if __name__ == "__main__":
    main()
