"""The prologue of scripts run in a fresh process as a user without this package: importing hf_sepnorm fails."""

import textwrap

BLOCK_HF_SEPNORM = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockHfSepnorm(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hf_sepnorm" or name.startswith("hf_sepnorm."):
                raise ImportError("hf_sepnorm is blocked in this process")

    sys.meta_path.insert(0, BlockHfSepnorm())
    try:
        import hf_sepnorm  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("hf_sepnorm was importable")
    """
)
