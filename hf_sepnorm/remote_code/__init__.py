"""The files that travel with every SepNorm checkpoint.

`save_pretrained` copies these modules, flat, next to the weights, and `trust_remote_code=True` runs them where
hf_sepnorm is not installed. So each may import only the standard library, torch, transformers (and, as transformers'
own configs do, `strict` from huggingface_hub, which transformers requires) and its siblings here
(`from .sepnorm import ...`); nothing else of hf_sepnorm belongs in this folder.
"""
