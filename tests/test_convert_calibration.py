"""`hf-sepnorm convert` writes a checkpoint usable at once: a [CLS] BatchNorm gets statistics estimated on the user's
data (--calibration_file), or the command refuses in one line (unless --uncalibrated asks for mean 0 / variance 1, for
a model trained next); calibration files too small or in another encoding are named in one line."""

import pytest
import torch
from test_conversion import run_cli, save_stock_checkpoint

# unrelated sentences, and one pair of related ones
GUITAR, INSTRUMENT = "A man is playing a guitar.", "Someone is playing an instrument."
UNRELATED = ["The stock market fell sharply today.", "Cats sleep most of the day.", "A plane is taking off."]


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hf-sepnorm convert: error: "), lines
    return lines[0]


@pytest.mark.slow
def test_converted_minilm_is_a_usable_sentence_transformer(minilm_dir, data_dir, tmp_path):
    """Calibrated on 300 STS-B sentences, the converted all-MiniLM-L6-v2 keeps unrelated sentences apart (on
    never-estimated statistics their cosine was 0.996 to 0.99999) and related ones closer than unrelated ones."""
    from sentence_transformers import SentenceTransformer

    rows = (data_dir / "glue" / "STS-B" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:301]
    calibration = tmp_path / "sentences.txt"
    calibration.write_text("\n".join(row.split("\t")[7] for row in rows) + "\n", encoding="utf-8")
    out = tmp_path / "minilm-sepnorm"
    result = run_cli("convert", minilm_dir, out, "--calibration_file", calibration, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Estimated the [CLS] BatchNorm statistics on 10 batches of {calibration}" in result.stdout
    assert "start at mean 0 and variance 1" not in result.stdout  # nothing contradicts the estimation

    model = SentenceTransformer(str(out), trust_remote_code=True, device="cpu")
    embeddings = model.encode([GUITAR, INSTRUMENT, *UNRELATED], convert_to_tensor=True, normalize_embeddings=True)
    cosines = embeddings @ embeddings.T
    unrelated = [cosines[i, j].item() for i in range(5) for j in range(i + 1, 5) if (i, j) != (0, 1)]
    # measured: related 0.418, unrelated at most 0.138 (stock all-MiniLM-L6-v2: 0.675 and 0.101)
    assert max(unrelated) < 0.6, cosines
    assert cosines[0, 1].item() > max(unrelated), cosines


@pytest.mark.slow
def test_without_data_convert_refuses_unless_asked_for_uncalibrated_statistics(tmp_path):
    stock = save_stock_checkpoint("bert", tmp_path / "stock")
    refused = one_error_line(run_cli("convert", stock, tmp_path / "refused", cwd=tmp_path))
    assert "--calibration_file" in refused and "--cls_norm layer" in refused and "--uncalibrated" in refused
    assert not (tmp_path / "refused").exists()

    result = run_cli("convert", stock, tmp_path / "to-train", "--uncalibrated", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "running statistics start at mean 0 and variance 1" in result.stdout and "Estimated" not in result.stdout
    assert result.stdout.count("mean 0 and variance 1") == 1

    layer = run_cli("convert", stock, tmp_path / "layer", "--cls_norm", "layer", cwd=tmp_path)  # nothing to estimate
    assert layer.returncode == 0 and "mean 0" not in layer.stdout


@pytest.mark.slow
def test_calibration_files_too_small_or_in_another_encoding_are_named_in_one_line(tmp_path):
    stock = save_stock_checkpoint("bert", tmp_path / "stock")
    empty, single, latin = tmp_path / "empty.txt", tmp_path / "single.txt", tmp_path / "latin1.txt"
    empty.write_text("\n  \n")
    single.write_text("only one sentence\n")
    latin.write_bytes("Le café est très bon.\nUne phrase naïve.\n".encode("latin-1") * 4)
    cases = {
        empty: f"--calibration_file: {empty} holds no text",
        single: f"--calibration_file {single}: non-blank lines: 1, too few",
        latin: f"--calibration_file: {latin} is not utf-8 text: byte 6 (0xe9) cannot be decoded",
    }
    for file, expected in cases.items():
        line = one_error_line(run_cli("convert", stock, tmp_path / file.stem, "--calibration_file", file, cwd=tmp_path))
        assert expected in line, line
        assert not (tmp_path / file.stem).exists()
    assert "--encoding" in line

    result = run_cli("convert", stock, tmp_path / "read", "--calibration_file", latin, "--encoding", "latin-1",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Estimated the [CLS] BatchNorm statistics on 1 batches of {latin}" in result.stdout


@pytest.mark.slow
def test_a_conversion_failing_on_its_calibration_images_leaves_the_model_it_would_replace(tmp_path):
    """--overwrite_output_dir replaces the saved model only once the new one is converted and calibrated: a broken
    calibration image ends the command in one line with every file of the folder as it was."""
    from family_checkpoints import save_image

    stock = save_stock_checkpoint("vit_mae", tmp_path / "stock")
    out = tmp_path / "out"
    assert run_cli("convert", stock, out, "--uncalibrated", cwd=tmp_path).returncode == 0
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    assert {"model.safetensors", "config.json", "README.md"} <= before.keys()
    images = tmp_path / "images"
    images.mkdir()
    save_image(images / "good.png")
    (images / "broken.jpg").write_bytes(b"not a jpeg at all")
    result = run_cli("convert", stock, out, "--calibration_file", images, "--overwrite_output_dir", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]  # after transformers' progress bar of the weights loaded
    assert line.startswith("hf-sepnorm convert: error: Cannot read image") and "broken.jpg" in line, line
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before
