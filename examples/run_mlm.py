#!/usr/bin/env python
"""Masked-LM pretraining of SepNormBertForMaskedLM on plain text, with the HF Trainer.

The script is `hf_sepnorm.scripts.mlm`, which `hf-sepnorm mlm` runs too (`--help` lists its flags). This file only
calls its `main`, so a copy of it runs wherever hf_sepnorm is installed, also as `accelerate launch
examples/run_mlm.py ...`.
"""

from hf_sepnorm.scripts.mlm import main
from hf_sepnorm.training import run_main

if __name__ == "__main__":
    run_main(main)
