"""Model registry: ``--model X`` loads ``models/X_model.py`` and its class ``XModel`` (case-insensitive, '_' dropped).

Kept light: importing ``models.reversible`` (the self-contained library) does not import the application."""
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def available_models():
    from util.registry import available
    return available(_HERE, "model")


def find_model_using_name(name):
    from util.registry import find_class
    return find_class("models", _HERE, name, "model", "--model")


def get_option_setter(name):
    return find_model_using_name(name).modify_commandline_options


def options_spec(opt):
    """The ModelSpec the options ask for."""
    from models.config import ModelSpec
    return ModelSpec.from_options(opt, find_model_using_name(opt.model).dims)


def create_model(opt, spec=None):
    """The model ``--model`` names, with the networks of ``spec`` (models.config.ModelSpec; default: the options')."""
    model = find_model_using_name(opt.model)(opt, spec if spec is not None else options_spec(opt))
    print(f"model [{type(model).__name__}] was created")
    return model
