"""Registries by file name, as in CycleGAN: ``PACKAGE/NAME_SUFFIX.py`` defines class ``NAMESUFFIX`` (any case)."""
import importlib
import os

from util.errors import UserError


def available(folder, suffix):
    end = f"_{suffix}.py"
    return sorted(f[: -len(end)] for f in os.listdir(folder) if f.endswith(end) and f != f"base{end}")


def find_class(package, folder, name, suffix, flag):
    valid = available(folder, suffix)
    if name not in valid:
        raise UserError(f"unknown {flag} {name!r}; valid: {', '.join(valid)}")
    module = importlib.import_module(f"{package}.{name}_{suffix}")
    target = name.replace("_", "") + suffix
    for cls_name, cls in vars(module).items():
        if cls_name.lower() == target and isinstance(cls, type):
            return cls
    raise UserError(f"{package}/{name}_{suffix}.py defines no class {target} (case-insensitive)")
