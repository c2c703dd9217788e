"""An image checkpoint's processor comes from where its weights come from: the same Hub revision and cache folder."""

from pathlib import Path

from hub_server import TEST_USER, hub_server  # noqa: F401 - `hub_server` is a fixture
from transformers import ViTImageProcessor

from hf_sepnorm.data.images import load_or_make_image_processor


def test_the_processor_is_read_at_the_given_revision_into_the_given_cache(hub_server, tmp_path):  # noqa: F811
    repo_id = f"{TEST_USER}/tiny-image-processor"
    first = ViTImageProcessor(size={"height": 32, "width": 32}).push_to_hub(repo_id).oid
    ViTImageProcessor(size={"height": 24, "width": 24}).push_to_hub(repo_id)  # main moves on
    cache = tmp_path / "own-cache"

    at_first = load_or_make_image_processor(repo_id, 16, 3, {"revision": first, "cache_dir": str(cache)})
    assert at_first.size == {"height": 32, "width": 32}
    assert any(path.name == "preprocessor_config.json" for path in Path(cache).rglob("*"))
    assert load_or_make_image_processor(repo_id, 16, 3).size == {"height": 24, "width": 24}
    # no processor in the checkpoint: a new one for the images' size
    assert load_or_make_image_processor(None, 16, 3).size == {"height": 16, "width": 16}
