#!/usr/bin/env python
"""MAE pretraining of SepNormViTMAEForPreTraining on images, with the HF Trainer.

The script is `hf_sepnorm.scripts.mae`, which `hf-sepnorm mae` runs too (`--help` lists its flags). This file only
calls its `main`, so a copy of it runs wherever hf_sepnorm is installed, also as `accelerate launch
examples/run_mae.py ...`.
"""

from hf_sepnorm.scripts.mae import main
from hf_sepnorm.training import run_main

if __name__ == "__main__":
    run_main(main)
