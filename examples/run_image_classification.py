#!/usr/bin/env python
"""Fine-tuning or linear probing of SepNormViTMAEForImageClassification, with the HF Trainer.

The script is `hf_sepnorm.scripts.image_classification`, which `hf-sepnorm image-classification` runs too (`--help`
lists its flags). This file only calls its `main`, so a copy of it runs wherever hf_sepnorm is installed, also as
`accelerate launch examples/run_image_classification.py ...`.
"""

from hf_sepnorm.scripts.image_classification import main
from hf_sepnorm.training import run_main

if __name__ == "__main__":
    run_main(main)
