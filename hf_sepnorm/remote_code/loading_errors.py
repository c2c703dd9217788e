"""`from_pretrained` errors that name their cause and fix, where transformers' and safetensors' do not.

It travels with every checkpoint (remote code) beside `sepnorm.py`, whose model mixin inherits it; safetensors is a
dependency of transformers.
"""

from safetensors import SafetensorError

HUB_KWARGS = ("revision", "cache_dir", "token", "local_files_only", "subfolder", "force_download", "proxies")


class ClearLoadingErrorsMixin:
    """Mixed into a `PreTrainedModel` subclass: its `from_pretrained` re-raises two errors with their cause named."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
                raise
            # transformers' message (recognized by the option it names) only points at a report it logged: say
            # which requested field caused it
            # read where the weights came from: the same revision, cache, token and subfolder
            where = {key: kwargs[key] for key in HUB_KWARGS if key in kwargs}
            saved, _ = cls.config_class.get_config_dict(pretrained_model_name_or_path, **where)
            changed = {key: value for key, value in kwargs.items() if key in saved and saved[key] != value}
            changes = ", ".join(f"{key}={value} (checkpoint: {saved[key]})" for key, value in changed.items())
            raise RuntimeError(
                f"The weights of {pretrained_model_name_or_path} do not fit the model asked for"
                f"{': ' + changes if changes else ''}. Load it with its own config, or pass "
                "ignore_mismatched_sizes=True to start the mismatched weights anew (e.g. a head with other labels)."
            ) from error
        except SafetensorError as error:
            # safetensors' own message does not say which file
            raise OSError(
                f"The weights of {pretrained_model_name_or_path} are truncated or corrupted ({error}): an interrupted "
                "save or download. Save or download them again, or use an earlier checkpoint."
            ) from error
