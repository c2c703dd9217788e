"""The model card templates, installed as the package `hf_sepnorm.model_cards` (see setup.cfg's `package_dir`):
`sepnorm.md`, one for every family's models, and `sepnorm_adapter.md`, for their LoRA adapters."""
