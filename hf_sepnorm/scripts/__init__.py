"""The training scripts, in the package so that an installed wheel runs them: `hf-sepnorm <command> --flags`, or
`python -m hf_sepnorm.scripts.<module>` (also under `accelerate launch -m`). `examples/run_*.py` call the same `main`.
Each `main(args=None)` parses its flags with `HfArgumentParser`, trains with the Trainer and returns its metrics."""

# command -> module of this package (hf_sepnorm_cli.SCRIPT_COMMANDS lists the same commands, without importing this)
SCRIPTS = {
    "mlm": "mlm",
    "mae": "mae",
    "glue": "glue",
    "image-classification": "image_classification",
    "simcse": "simcse",
}
