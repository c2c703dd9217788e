"""A user's mistake ends a script with one line naming the problem and the fix, exit code 2, and no traceback
(`run_main` and `hf_sepnorm.errors.InputError`); run as a user runs them, `python examples/<script> ...`."""

from pathlib import Path

import pytest
from scripts_in_one_process import run_scripts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VIT_MAE = Path(__file__).resolve().parents[1] / "fixtures" / "sepnorm_vit_mae_v0.1"


@pytest.fixture(scope="module")
def mistakes(data_dir, minilm_dir, tmp_path_factory) -> list[tuple[list[str], dict]]:
    tmp = tmp_path_factory.mktemp("mistakes")
    unlabelled = tmp / "SST-2"  # a train.tsv without its label column, beside the official dev.tsv
    unlabelled.mkdir()
    rows = (data_dir / "glue" / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()[:40]
    (unlabelled / "train.tsv").write_text("\n".join(row.split("\t")[0] for row in rows) + "\n", encoding="utf-8")
    (unlabelled / "dev.tsv").write_text((data_dir / "glue" / "SST-2" / "dev.tsv").read_text(encoding="utf-8"))
    common = ["--do_train", "--max_steps", "1", "--report_to", "none"]
    runs = [
        [str(EXAMPLES / "run_glue.py"), "--model_name_or_path", str(VIT_MAE), "--task_name", "sst2", "--data_dir",
         str(data_dir / "glue" / "SST-2"), "--output_dir", str(tmp / "a"), *common],
        [str(EXAMPLES / "run_glue.py"), "--model_name_or_path", str(minilm_dir), "--task_name", "sst2", "--data_dir",
         str(unlabelled), "--output_dir", str(tmp / "b"), *common],
        [str(EXAMPLES / "run_mae.py"), "--model_name_or_path", str(minilm_dir), "--train_dir", str(tmp),
         "--output_dir", str(tmp / "c"), *common],
        [str(EXAMPLES / "run_simcse.py"), "--model_name_or_path", str(minilm_dir), "--output_dir", str(tmp / "d"),
         *common],
    ]  # fmt: skip
    return list(zip(runs, run_scripts(runs, cwd=tmp)))


@pytest.mark.parametrize(
    "index, expected",
    [
        (0, "is a ViT-MAE checkpoint ('sepnorm_vit_mae'), a model of images, and this script trains a model of texts: "
            "give a BERT, RoBERTa or ModernBERT checkpoint (stock or SepNorm)"),
        (1, "cannot read {tmp}/SST-2/train.tsv: Usecols do not match columns, columns expected but not found: "
            "['label']"),
        (2, "is a BERT checkpoint ('bert'), a model of texts, and this script trains a model of images"),
        (3, "--do_train needs --train_file"),
    ],
    ids=["image-model-to-run_glue", "train.tsv-without-labels", "text-model-to-run_mae", "simcse-without-sentences"],
)
def test_a_mistake_gets_one_line_and_exit_code_2(mistakes, index, expected):
    (script, *arguments), result = mistakes[index]
    tmp = Path(arguments[arguments.index("--output_dir") + 1]).parent
    assert result["code"] == 2, result["stderr"][-3000:]
    assert "Traceback" not in result["stderr"]
    last = result["stderr"].strip().splitlines()[-1]
    assert last.startswith(f"{Path(script).name}: error: ") and expected.format(tmp=tmp) in last, last
