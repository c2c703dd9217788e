"""The Auto classes of a SepNorm family: `register_family` marks its classes as custom code, and `qualified_name` is
how the config's `auto_map` names each class ("module.Class", the module a flat copy next to the weights)."""


def qualified_name(cls: type) -> str:
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def register_family(config_class, auto_classes: dict[str, type]) -> None:
    """Mark a family's config and model classes as custom code, so that `save_pretrained` writes the code files next
    to the weights and the config's `auto_map` lists every head of the family."""
    config_class.register_for_auto_class()
    for auto_class, model_class in auto_classes.items():
        model_class.register_for_auto_class(auto_class)
        model_class.sepnorm_auto_classes = auto_classes
