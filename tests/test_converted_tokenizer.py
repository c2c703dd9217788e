"""A converted folder's stock tokenizer, loaded where the package is not installed: without any question asked when
remote code is refused, and the question transformers asks otherwise (docs/models.md says why)."""

import os
import subprocess
import sys
import textwrap

from test_conversion import stock_mlm_folder  # noqa: F401  (a fixture: a stock BERT with its tokenizer)
from without_package import BLOCK_HF_SEPNORM

from hf_sepnorm import convert_stock_checkpoint
from hf_sepnorm.conversion import save_converted

LOAD_TOKENIZER = BLOCK_HF_SEPNORM + textwrap.dedent(
    """
    from transformers import AutoTokenizer

    kwargs = {} if sys.argv[2] == "none" else {"trust_remote_code": sys.argv[2] == "true"}
    tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], **kwargs)
    print(type(tokenizer).__name__, tokenizer("hello world")["input_ids"])
    """
)


def load_tokenizer_without_package(folder, trust_remote_code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LOAD_TOKENIZER, str(folder), trust_remote_code], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip


def test_a_converted_folders_stock_tokenizer_loads_without_the_package(stock_mlm_folder, tmp_path):  # noqa: F811
    out = tmp_path / "converted"
    save_converted(convert_stock_checkpoint(stock_mlm_folder, cls_norm="batch"), stock_mlm_folder, out)
    refused = load_tokenizer_without_package(out, "false")
    assert refused.returncode == 0, refused.stderr[-2000:]
    assert refused.stdout.splitlines()[-1] == "TokenizersBackend [5, 6]"  # the stock tokenizer, its own ids
    assert "Do you wish to run the custom code" not in refused.stdout + refused.stderr
    # without trust_remote_code, transformers asks (its rule for a config with remote code), and stdin says no
    asked = load_tokenizer_without_package(out, "none")
    assert asked.returncode == 0 and "Do you wish to run the custom code" in asked.stdout + asked.stderr
    assert asked.stdout.splitlines()[-1].endswith("TokenizersBackend [5, 6]")  # the same stock tokenizer, once asked
