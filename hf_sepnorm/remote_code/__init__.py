"""The files that travel with every SepNorm checkpoint.

`save_pretrained` copies these modules, flat, next to the weights, and `trust_remote_code=True` runs them where
hf_sepnorm is not installed. So each may import only the standard library, torch, transformers and what they
themselves require (`strict` from huggingface_hub, as transformers' own configs do; safetensors; typing_extensions)
and its siblings here (`from .sepnorm import ...`); nothing else of hf_sepnorm belongs in this folder. `sepnorm.py`
is the one to read first.
"""
