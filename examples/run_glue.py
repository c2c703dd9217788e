#!/usr/bin/env python
"""Fine-tuning SepNormBertForSequenceClassification on a GLUE task, with the HF Trainer.

The script is `hf_sepnorm.scripts.glue`, which `hf-sepnorm glue` runs too (`--help` lists its flags). This file only
calls its `main`, so a copy of it runs wherever hf_sepnorm is installed, also as `accelerate launch
examples/run_glue.py ...`.
"""

from hf_sepnorm.scripts.glue import main
from hf_sepnorm.training import run_main

if __name__ == "__main__":
    run_main(main)
