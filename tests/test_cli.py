"""The `hf-sepnorm` parser (`hf_sepnorm_cli`, outside the package): its choices are the package's, and `--help`
answers without importing torch or transformers."""

import subprocess
import sys
import textwrap

import pytest

import hf_sepnorm_cli
from hf_sepnorm import FAMILIES
from hf_sepnorm.compare.recipes import ARMS, DEFAULT_ARMS, PRESETS
from hf_sepnorm.conversion import SENTENCE_POOLINGS
from hf_sepnorm.remote_code.configuration_sepnorm import CLS_NORM_KINDS, SEPNORM_SCOPES


def test_the_parsers_choices_are_the_packages():
    assert hf_sepnorm_cli.CLS_NORM_KINDS == tuple(CLS_NORM_KINDS)
    assert hf_sepnorm_cli.SEPNORM_SCOPES == tuple(SEPNORM_SCOPES)
    assert hf_sepnorm_cli.SENTENCE_POOLINGS == tuple(SENTENCE_POOLINGS)
    assert hf_sepnorm_cli.FAMILY_NAMES == tuple(family.name for family in FAMILIES.values())
    assert hf_sepnorm_cli.COMPARE_ARMS == tuple(sorted(ARMS))
    assert hf_sepnorm_cli.COMPARE_DEFAULT_ARMS == tuple(DEFAULT_ARMS)
    assert hf_sepnorm_cli.COMPARE_PRESETS == tuple(sorted(PRESETS))


def test_every_command_runs_its_package_function():
    from hf_sepnorm import cli
    from hf_sepnorm.scripts import SCRIPTS

    commands = hf_sepnorm_cli.build_parser()._subparsers._group_actions[0].choices
    assert set(commands) == set(cli.COMMANDS) | set(hf_sepnorm_cli.SCRIPT_COMMANDS)
    assert list(hf_sepnorm_cli.SCRIPT_COMMANDS) == list(SCRIPTS)
    assert not set(cli.COMMANDS) & set(SCRIPTS)


def test_a_script_command_runs_the_script_with_its_flags(capsys):
    with pytest.raises(SystemExit) as exit:
        hf_sepnorm_cli.main(["glue", "--help"])
    assert exit.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith("usage: hf-sepnorm glue") and "--task_name" in usage and "--recalibrate_cls_norm" in usage
    with pytest.raises(SystemExit) as exit:
        hf_sepnorm_cli.main(["mae", "--output_dir", "unused", "--do_train"])  # no images given
    assert exit.value.code == 2
    assert capsys.readouterr().err.startswith("hf-sepnorm mae: error: ")


HELP_WITHOUT_TORCH = textwrap.dedent(
    """
    import sys
    for blocked in ("torch", "transformers", "huggingface_hub", "hf_sepnorm"):
        sys.modules[blocked] = None  # importing any of them now fails
    import hf_sepnorm_cli
    try:
        hf_sepnorm_cli.main(sys.argv[1:])
    except SystemExit as exit:
        sys.exit(exit.code)
    """
)


@pytest.mark.parametrize("argv", [["--help"], ["convert", "--help"], ["push", "--help"], ["compare", "--help"],
                                  ["convert", "stock", "out", "--cls_norm", "bach"]])  # fmt: skip
def test_help_and_flag_mistakes_need_neither_torch_nor_transformers(argv):
    result = subprocess.run([sys.executable, "-c", HELP_WITHOUT_TORCH, *argv], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    if argv[-1] == "--help":
        assert result.returncode == 0, result.stderr
        assert "usage: hf-sepnorm" in result.stdout
    else:  # argparse's own one-line error, exit code 2
        assert result.returncode == 2 and "invalid choice: 'bach'" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_compare_takes_any_text_family_checkpoint_as_pretrained_and_keeps_the_old_flag():
    parser = hf_sepnorm_cli.build_parser()
    for flag in ("--pretrained", "--pretrained_bert"):
        args = parser.parse_args(["compare", "--output_dir", "out", flag, "some/modernbert"])
        assert args.pretrained == "some/modernbert"
    assert parser.parse_args(["compare", "--output_dir", "out", "--pretrained"]).pretrained is True  # bundled MiniLM
