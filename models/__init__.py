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


def with_architecture_defaults(opt, spec):
    """``opt`` (a RunConfig) with the training flags left at None whose default depends on the architecture ``spec``
    set (BaseModel.architecture_defaults; e.g. --lambda_identity)."""
    if not opt.is_train:
        return opt
    return opt.replace(**find_model_using_name(opt.model).architecture_defaults(opt, spec))


def create_model(opt, spec=None):
    """The model ``--model`` names, with the networks of ``spec`` (models.config.ModelSpec; default: the options')."""
    spec = spec if spec is not None else options_spec(opt)
    model = find_model_using_name(opt.model)(with_architecture_defaults(opt, spec), spec)
    print(f"model [{type(model).__name__}] was created")
    return model
