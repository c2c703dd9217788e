"""Model card templates, installed as the package `hf_sepnorm.model_cards` (see setup.cfg)."""
