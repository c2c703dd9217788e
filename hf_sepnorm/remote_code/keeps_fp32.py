"""Modules whose fp32 parameters and buffers stay fp32 when the model is cast (the [CLS] BatchNorm's)."""

import torch


class KeepsFp32:
    """Mixed into a module whose fp32 parameters and buffers must stay fp32 whatever dtype the model is cast to
    (`model.to(torch.bfloat16)`, `.half()`): running statistics accumulate updates that bf16 would round away."""

    def _apply(self, fn, recurse=True):
        def convert_keeping_fp32(tensor):
            converted = fn(tensor)
            if tensor.dtype == torch.float32 and converted.dtype != torch.float32:
                return tensor.to(device=converted.device)
            return converted

        return super()._apply(convert_keeping_fp32, recurse)
