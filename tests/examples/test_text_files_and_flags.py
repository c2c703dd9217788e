"""Text files as they come and flags as typed: a file in another encoding is named with the byte that cannot be
decoded, and read with --encoding; a mistyped flag of any script or command is named with the closest valid one."""

import json
import subprocess
import sys

import pytest
from conftest import TINY_BERT_OVERRIDES

import hf_sepnorm_cli
from hf_sepnorm.data.text import decoded_text_is_blank
from hf_sepnorm.errors import InputError

LATIN_1 = "Le café de la gare est très fréquenté le matin.\nUne idée naïve, mais une belle soirée d'été.\n"


def last_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.fixture
def latin_text(tmp_path):
    path = tmp_path / "corpus-latin1.txt"
    path.write_bytes((LATIN_1 * 40).encode("latin-1"))
    return path


def test_a_latin1_corpus_is_named_with_its_byte_and_read_with_encoding(latin_text, tmp_path, capsys):
    arguments = ["mlm", "--train_file", str(latin_text), "--do_train", "--max_steps", "1", "--report_to", "none",
                 "--config_overrides", TINY_BERT_OVERRIDES, "--vocab_size", "200", "--max_seq_length", "16",
                 "--per_device_train_batch_size", "4", "--disable_tqdm", "true"]  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        hf_sepnorm_cli.main([*arguments, "--output_dir", str(tmp_path / "refused")])
    assert exited.value.code == 2
    line = last_error_line(capsys)
    offset = LATIN_1.index("é")  # 6: "Le caf" is 6 bytes in either encoding
    assert line == (f"hf-sepnorm mlm: error: --train_file: {latin_text} is not utf-8 text: byte {offset} (0xe9) cannot "
                    "be decoded (invalid continuation byte). Pass --encoding with the file's encoding (e.g. --encoding "
                    "latin-1), or convert the file to UTF-8.")  # fmt: skip
    assert not (tmp_path / "refused").exists()

    assert hf_sepnorm_cli.main([*arguments, "--output_dir", str(tmp_path / "read"), "--encoding", "latin-1"]) == 0
    vocabulary = json.loads((tmp_path / "read" / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert "\ufffd" not in "".join(vocabulary)  # no replacement character: every byte was decoded as Latin-1


def test_simcse_names_a_latin1_file(latin_text, minilm_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        hf_sepnorm_cli.main(["simcse", "--model_name_or_path", str(minilm_dir), "--train_file", str(latin_text),
                             "--output_dir", str(tmp_path / "o"), "--do_train", "--max_steps", "1",
                             "--report_to", "none"])  # fmt: skip
    line = last_error_line(capsys)
    assert line.startswith(f"hf-sepnorm simcse: error: --train_file: {latin_text} is not utf-8 text: byte 6 (0xe9)")


def test_the_offset_is_the_files_across_read_blocks(tmp_path):
    path = tmp_path / "mixed.txt"
    good = "ab€cd€".encode()  # 3-byte characters straddle the 4-byte blocks below
    path.write_bytes(good + b"\xff tail")
    with pytest.raises(InputError, match=rf"byte {len(good)} \(0xff\)"):
        decoded_text_is_blank(path, "--train_file", block_size=4)
    assert decoded_text_is_blank(path, "--train_file", "latin-1", block_size=4) is False


@pytest.mark.parametrize(
    "command, typo, closest",
    [
        ("mae", "--mask_ration", "--mask_ratio"),
        ("mlm", "--mlm_probabilty", "--mlm_probability"),
        ("image-classification", "--liner_probe", "--linear_probe"),
        ("simcse", "--temprature", "--temperature"),
        ("glue", "--learnig_rate", "--learning_rate"),
    ],
)
def test_a_mistyped_script_flag_gets_one_line_with_the_closest(command, typo, closest, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        hf_sepnorm_cli.main([command, typo, "1", "--output_dir", str(tmp_path / "o"), "--train_file", "x.csv",
                             "--train_dir", str(tmp_path)])  # fmt: skip
    assert exited.value.code == 2
    line = last_error_line(capsys)
    # the flags a script does not have, --train_dir for the text scripts say, come after the typo
    assert line == f"hf-sepnorm {command}: error: unknown flag {typo}: did you mean {closest}?", line


def test_a_mistyped_command_flag_gets_one_line_with_the_closest(tmp_path):
    for arguments, expected in (
        (["convert", "stock", "out", "--calibraton_file", "a.txt"], "unknown flag --calibraton_file: did you mean "
                                                                     "--calibration_file?"),
        (["push", "folder", "user/repo", "--pivate"], "unknown flag --pivate: did you mean --private?"),
    ):
        result = subprocess.run([sys.executable, "-m", "hf_sepnorm_cli", *arguments], capture_output=True, text=True,
                                cwd=tmp_path, timeout=120)  # fmt: skip
        assert result.returncode == 2
        assert result.stderr.strip() == f"hf-sepnorm {arguments[0]}: error: {expected}", result.stderr
