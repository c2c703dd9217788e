"""The model card template, `sepnorm.md` (one for every family), installed as the package `hf_sepnorm.model_cards`
(see setup.cfg's `package_dir`)."""
