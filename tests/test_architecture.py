"""docs/ARCHITECTURE.md's layer table is what the code imports: every import of every module (read with ast, nested
imports included) goes to a layer the table allows, every edge the table draws exists, and models/reversible/
imports nothing but torch and the standard library."""
import ast
import os
import re
import sys

from tests.conftest import ROOT

FOLDERS = ("data", "datasets", "evaluation", "models", "options", "scripts", "util")
ENTRY_POINTS = ("train.py", "test.py", "export.py", "translate.py", "cli.py")


def layer_of_module(name):
    """The layer a dotted module name belongs to, or None for anything outside the application."""
    parts = name.split(".")
    if parts[:2] == ["models", "reversible"]:
        return "models/reversible"
    if parts[0] in FOLDERS:
        return parts[0]
    if parts[0] + ".py" in ENTRY_POINTS:
        return parts[0] + ".py"
    return None


def modules():
    """(path relative to the root, dotted module name) of every application module (tests excluded, except the
    reversible library's own, which belong to the library)."""
    for name in ENTRY_POINTS:
        yield name, name[:-3]
    for folder in FOLDERS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            for f in filenames:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
                    yield rel, rel[:-3].replace(os.sep, ".")


def imports(path, module):
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    tree = ast.parse(open(os.path.join(ROOT, path), encoding="utf-8").read())
    package = module.split(".")[:-1]  # a module's package (of "pkg.__init__": pkg itself)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            yield ".".join(base + ([node.module] if node.module else []))


def code_edges():
    edges = {}
    for path, module in modules():
        mine = layer_of_module(module)
        for name in imports(path, module):
            theirs = layer_of_module(name)
            if theirs is not None and theirs != mine:
                edges.setdefault(mine, {}).setdefault(theirs, path)
    return edges


def documented_edges():
    text = open(os.path.join(ROOT, "docs", "ARCHITECTURE.md"), encoding="utf-8").read()
    table = text.split("| layer | imports |")[1].split("\n\n")[0]
    rows = [line.split("|")[1:3] for line in table.strip().splitlines()[1:]]
    return {re.findall(r"`([^`]+)`", left)[0]: set(re.findall(r"`([^`]+)`", right)) for left, right in rows}


def test_the_layer_table_is_what_the_code_imports():
    documented, actual = documented_edges(), code_edges()
    assert set(actual) <= set(documented), set(actual) - set(documented)
    for layer, allowed in documented.items():
        found = actual.get(layer, {})
        wrong = {t: path for t, path in found.items() if t not in allowed}
        assert not wrong, f"{layer} imports what docs/ARCHITECTURE.md does not allow: {wrong}"
        assert set(found) == allowed, f"docs/ARCHITECTURE.md draws {layer} -> {allowed - set(found)}: no such import"
    assert "test.py" not in documented["train.py"] and "train.py" not in documented["test.py"]


def test_the_reversible_library_imports_only_torch():
    for path, module in modules():
        if module.startswith("models.reversible") and ".tests" not in module:
            for name in imports(path, module):
                top = name.split(".")[0]
                assert name.startswith("models.reversible") or top == "torch" or top in sys.stdlib_module_names, \
                    (path, name)


def test_the_check_sees_a_wrong_way_import(tmp_path, monkeypatch):
    """The checks fail on an import the table forbids (here: util importing models), so they can fail."""
    monkeypatch.setattr(sys.modules[__name__], "modules", lambda: [("util/errors.py", "util.errors")])
    original = imports
    monkeypatch.setattr(sys.modules[__name__], "imports",
                        lambda path, module: list(original(path, module)) + ["models.base_model"])
    assert code_edges() == {"util": {"models": "util/errors.py"}}
