"""Model registry: ``--model X`` loads ``models/X_model.py`` and its class ``XModel`` (case-insensitive, '_' dropped).

Kept light: importing ``models.reversible`` (the self-contained library) does not import the application."""
import importlib
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def available_models():
    return sorted(f[: -len("_model.py")] for f in os.listdir(_HERE) if f.endswith("_model.py") and f != "base_model.py")


def find_model_using_name(name):
    from util.errors import UserError
    if name not in available_models():
        raise UserError(f"unknown --model {name!r}; valid: {', '.join(available_models())}")
    module = importlib.import_module(f"models.{name}_model")
    target = name.replace("_", "") + "model"
    for cls_name, cls in vars(module).items():
        if cls_name.lower() == target and isinstance(cls, type):
            return cls
    raise UserError(f"models/{name}_model.py defines no class {target} (case-insensitive)")


def get_option_setter(name):
    return find_model_using_name(name).modify_commandline_options


def create_model(opt):
    model = find_model_using_name(opt.model)(opt)
    print(f"model [{type(model).__name__}] was created")
    return model
