#!/usr/bin/env python
"""Unsupervised SimCSE (Gao et al., 2021) with a SepNorm BERT and the HF Trainer, evaluated on STS-B.

The script is `hf_sepnorm.scripts.simcse`, which `hf-sepnorm simcse` runs too (`--help` lists its flags). This file
only calls its `main`, so a copy of it runs wherever hf_sepnorm is installed, also as `accelerate launch
examples/run_simcse.py ...`.
"""

from hf_sepnorm.scripts.simcse import main
from hf_sepnorm.training import run_main

if __name__ == "__main__":
    run_main(main)
