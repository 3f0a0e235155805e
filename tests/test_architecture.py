"""Import rules between cgzoo's layers, checked on the source: every import of every module, function-level ones included.

A module's layer is the first package (or module) under ``cgzoo/``: ``cgzoo/md/simulate.py`` is in
``md``, ``cgzoo/terms.py`` in ``terms``. Imports are read with :mod:`ast` — module-level and
function-level ``import``/``from … import`` statements, relative ones, string literals given to
``importlib.import_module``/``__import__``, and the ``"cgzoo.module:Class"`` entries of the lazy
registries — so an import hidden in a function or a registry breaks a rule as surely as one at the
top. The rules are the tables below; ``docs/architecture.md`` quotes them
(:func:`test_docs_quote_the_rules` keeps the two equal).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cgzoo.models import NETWORKS, Network, network_class, network_spec
from cgzoo.priors import PRIORS, Prior, prior_class

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cgzoo"
DOC = ROOT / "docs" / "architecture.md"
#: a lazy registry's entry: the module and class a name resolves to on first use
REGISTRY_ENTRY = re.compile(r"(cgzoo(?:\.\w+)+):\w+")

#: layer → (layers it must never import, why)
FORBIDDEN: dict[str, tuple[tuple[str, ...], str]] = {
    "models": (("training", "md", "engines", "cli"), "a model knows nothing of how it is trained or driven"),
    "priors": (("models", "fitting"), "priors stand alone; fitting produces them, models wrap them"),
    "fitting": (("models", "training", "md", "engines"), "fitting turns a dataset into priors, before and without any network"),
    "tables": (("priors", "fitting", "models", "engines", "md"),
               "table files are other tools' formats; priors, fitting and engines use them, through a protocol, never the reverse"),
    "observables": (("models", "priors", "md"), "observables read trajectories and datasets, never a network"),
    "mapping": (("training", "models"), "data preparation works without Lightning or networks"),
    "io": (("training", "models"), "data preparation works without Lightning or networks"),
    "data": (("training", "models"), "data preparation works without Lightning or networks"),
    "md": (("training",), "running a model needs the model and its checkpoint reader, not the trainer"),
    "engines": (("md", "training"), "an engine receives a built model and a bead system, nothing of runs or training"),
    "testing": (("training", "md", "engines", "study"), "the shared suites check models and priors, not how they run"),
    "meanforce": (("training",), "mean forces come from atomistic MD and score any saved model, without the trainer"),
    "refine": (("training", "engines"), "a refinement drives MD through md's public functions and fits priors, never the trainer"),
}
#: layers no other layer imports, and why
TOP: dict[str, str] = {
    "study": "the experiment layer on top of everything",
    "cli": "the `cgzoo` command only dispatches to the verbs below it",
    "testing": "the shared test suites are for test code, never imported by the library",
    "meanforce": "the noise floor is measured on top of generate, mapping and models, never below them",
    "refine": "refinement runs MD of a fitted model and adjusts it; only the command calls it",
}
#: layers whose modules import no torch-based cgzoo module (one that imports torch, Lightning or PyG, even inside a
#: function) and no torch package; ``observables`` is not one: g(r) uses the vesin neighbour list of ``cgzoo.neighbors``
TORCH_FREE: tuple[str, ...] = ("data", "io", "mapping", "tables", "terms", "geometry", "metrics", "hashing", "errors",
                               "units", "intervals")
#: layers that import no other cgzoo layer, so every layer (torch-free ones included) can use them
LEAVES: tuple[str, ...] = ("terms", "geometry", "metrics", "hashing", "errors", "units", "intervals")
#: third-party packages that make a module torch-based
TORCH_PACKAGES = frozenset({"torch", "torch_geometric", "pytorch_lightning", "lightning", "lightning_fabric",
                            "vesin_torch", "e3nn", "torchmetrics", "openmmtorch"})
#: imports that break a rule above and are right all the same: (importing module, imported layer or package) → why
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("cgzoo.cli", "study"): "`cgzoo study` is one of the verbs the command dispatches to",
    ("cgzoo.cli", "meanforce"): "`cgzoo noise-floor` is one of the verbs the command dispatches to",
    ("cgzoo.cli", "refine"): "`cgzoo fit-friction` and `cgzoo refine-pressure` are verbs the command dispatches to",
    ("cgzoo.__main__", "cli"): "`python -m cgzoo` is the `cgzoo` command, run by a chosen interpreter",
    ("cgzoo.data.pyg", "torch"): "PyG frames are data (the intended picture); no other data module imports this one, "
                                 "so `cgzoo.data` loads without torch",
    ("cgzoo.data.pyg", "torch_geometric"): "the same PyG frames",
    ("cgzoo.data.pyg", "neighbors"): "a PyG batch becomes one periodic graph, each frame with its own topology",
}


@dataclass(frozen=True)
class Import:
    """One import of a cgzoo module: the importing module, the imported module's dotted name, and where."""

    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.source} imports {self.target}"


def module_name(path: Path) -> str:
    """The dotted name of a source file under ``cgzoo/``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """The layer of a dotted cgzoo module name: the first name under ``cgzoo`` (``cgzoo`` itself for the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def is_module(name: str) -> bool:
    """Whether a dotted ``cgzoo…`` name is a module or package of the source tree (not a function or class)."""
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of a relative import ``from {'.' * level}{name} import …`` in ``module``."""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def imports_in(text: str, source: str, path: Path) -> list[Import]:
    """Every import in module ``source`` (text ``text``): ``import``, ``from … import`` anywhere, literal ``import_module``
    names and registry entries (``"cgzoo.priors.harmonic:HarmonicBond"``)."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Import):
            found += [Import(source, alias.name, path, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(source, path.name == "__init__.py", node.level, node.module) if node.level else node.module
            for alias in node.names:  # ``from pkg import sub`` imports the submodule when there is one
                sub = f"{base}.{alias.name}"
                found.append(Import(source, sub if base.startswith("cgzoo") and is_module(sub) else base, path, node.lineno))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if called in ("import_module", "__import__"):
                found.append(Import(source, node.args[0].value, path, node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and REGISTRY_ENTRY.fullmatch(node.value):
            found.append(Import(source, REGISTRY_ENTRY.fullmatch(node.value).group(1), path, node.lineno))
    return found


def imports_of(path: Path) -> list[Import]:
    """Every import in a source file under ``cgzoo/``."""
    return imports_in(path.read_text(), module_name(path), path)


def all_imports() -> list[Import]:
    """Every import of every module under ``cgzoo/``."""
    return [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in imports_of(path)]


def cgzoo_imports() -> list[Import]:
    """The imports of cgzoo modules by cgzoo modules, between different modules."""
    return [imp for imp in all_imports() if imp.target.split(".")[0] == "cgzoo" and imp.target != imp.source]


def loaded_by(target: str) -> list[str]:
    """The cgzoo modules importing ``target`` executes: the module and every package above it."""
    parts = target.split(".")
    return [".".join(parts[:k]) for k in range(2, len(parts) + 1)]


def torch_based() -> dict[str, Import]:
    """Each torch-based cgzoo module with the first import that makes it so (a torch package, or a torch-based module)."""
    edges: dict[str, list[Import]] = {}
    based: dict[str, Import] = {}
    for imp in all_imports():
        if imp.target.split(".")[0] in TORCH_PACKAGES:
            based.setdefault(imp.source, imp)
        elif imp.target.split(".")[0] == "cgzoo":
            for target in loaded_by(imp.target):
                edges.setdefault(target, []).append(Import(imp.source, target, imp.path, imp.line))
    queue = list(based)
    while queue:
        for imp in edges.get(queue.pop(), []):
            if imp.source not in based:
                based[imp.source] = imp
                queue.append(imp.source)
    return based


def excepted(imp: Import, what: str) -> bool:
    """Whether ``imp`` (of layer or package ``what``) is a listed exception."""
    return (imp.source, what) in EXCEPTIONS


def layer_graph() -> dict[str, dict[str, Import]]:
    """Layer → imported layer → the first import making that edge (exceptions left out)."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in cgzoo_imports():
        src, dst = layer(imp.source), layer(imp.target)
        if src != dst and not excepted(imp, dst):
            graph.setdefault(src, {}).setdefault(dst, imp)
    return graph


def test_the_scan_sees_function_level_relative_and_importlib_imports():
    text = ("import importlib\nfrom . import bonded\n\n\ndef f():\n    from cgzoo.models import CGModel\n"
            "    return importlib.import_module('cgzoo.training.cli')\n\n\nREGISTRY = {'net': 'cgzoo.models.schnet:SchNet'}\n")
    found = {(imp.target, imp.line) for imp in imports_in(text, "cgzoo.observables.probe", PACKAGE / "observables" / "probe.py")}
    assert {("cgzoo.observables.bonded", 2), ("cgzoo.models", 6), ("cgzoo.training.cli", 7),
            ("cgzoo.models.schnet", 10)} <= found
    assert layer("cgzoo.md.simulate") == "md" and layer("cgzoo.terms") == "terms"


@pytest.mark.parametrize("src", sorted(FORBIDDEN))
def test_forbidden_directions(src):
    banned, why = FORBIDDEN[src]
    broken = [str(imp) for imp in cgzoo_imports()
              if layer(imp.source) == src and layer(imp.target) in banned and not excepted(imp, layer(imp.target))]
    assert not broken, f"{src} must not import {', '.join(banned)} ({why}):\n" + "\n".join(broken)


@pytest.mark.parametrize("top", sorted(TOP))
def test_top_layers_are_imported_by_no_other_layer(top):
    broken = [str(imp) for imp in cgzoo_imports()
              if layer(imp.target) == top and layer(imp.source) != top and not excepted(imp, top)]
    assert not broken, f"nothing imports {top} ({TOP[top]}):\n" + "\n".join(broken)


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaves_import_no_other_layer(leaf):
    broken = [str(imp) for imp in cgzoo_imports() if layer(imp.source) == leaf and layer(imp.target) != leaf]
    assert not broken, f"{leaf} is a leaf and imports no other cgzoo layer:\n" + "\n".join(broken)


def test_torch_free_layers_import_no_torch_based_module():
    based = torch_based()
    broken = []
    for imp in all_imports():
        if layer(imp.source) not in TORCH_FREE:
            continue
        package = imp.target.split(".")[0]
        if package in TORCH_PACKAGES and not excepted(imp, package):
            broken.append(str(imp))
        elif package == "cgzoo" and imp.target in based and not excepted(imp, layer(imp.target)):
            broken.append(f"{imp} (torch-based through {based[imp.target]})")
    assert not broken, f"{', '.join(TORCH_FREE)} import neither torch, Lightning nor PyG, nor a cgzoo module that does:\n" + "\n".join(broken)


def test_no_import_cycle_between_layers():
    graph = layer_graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph.get(node, {}):
            if nxt == path[0]:
                cycles.append(" → ".join([*path, nxt]) + "\n  " + "\n  ".join(
                    str(graph[a][b]) for a, b in zip(path, [*path[1:], nxt], strict=True)))
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its smallest layer
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "import cycles between layers:\n" + "\n".join(cycles)


def test_torch_free_layers_load_without_torch():
    code = ("import sys, pkgutil, importlib, cgzoo\n"
            f"for layer in {[name for name in TORCH_FREE]!r}:\n"
            "    pkg = importlib.import_module(f'cgzoo.{layer}')\n"
            "    for info in pkgutil.iter_modules(getattr(pkg, '__path__', [])):\n"
            "        if (pkg.__name__, info.name) != ('cgzoo.data', 'pyg'):\n"
            "            importlib.import_module(f'{pkg.__name__}.{info.name}')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in " + repr(sorted(TORCH_PACKAGES)) + "))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]", out.stdout


def test_registries_import_their_classes_on_first_use():
    """``import cgzoo.priors``/``cgzoo.models`` load no registered family or architecture, hence no scipy (tables, fits)."""
    code = ("import sys, cgzoo.priors, cgzoo.models\n"
            "lazy = {t.partition(':')[0] for t in [*cgzoo.priors.PRIORS.values(), *cgzoo.models.NETWORKS.values()]}\n"
            "lazy -= {'cgzoo.priors.base'}  # the protocol itself (none, sum)\n"
            "print(sorted(m for m in sys.modules if m in lazy or m.split('.')[0] == 'scipy'"
            " or m.startswith(('cgzoo.fitting', 'cgzoo.tables'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize(("registry", "resolve", "base"), [(PRIORS, prior_class, Prior), (NETWORKS, network_class, Network)],
                         ids=["priors", "networks"])
def test_registries_work_alike(registry, resolve, base):
    """Each entry is the ``module:Class`` of a subclass of the registry's base, found by name and by dotted path."""
    for name, target in registry.items():
        cls = resolve(name)
        assert issubclass(cls, base) and f"{cls.__module__}:{cls.__qualname__}" == target, (name, target, cls)
        assert resolve(target.replace(":", ".")) is cls
    assert network_spec(network_class("pair_mlp")(type_names=["A"]))["name"] == "pair_mlp"


def test_exceptions_are_still_needed():
    used = {(imp.source, layer(imp.target) if imp.target.startswith("cgzoo") else imp.target.split(".")[0])
            for imp in all_imports()}
    assert not set(EXCEPTIONS) - used, f"exceptions no import needs any more: {sorted(set(EXCEPTIONS) - used)}"


def rule_lines() -> list[str]:
    """The rules as ``docs/architecture.md`` lists them, one line each."""
    lines = [f"- {src} ↛ {', '.join(banned)}: {why}" for src, (banned, why) in FORBIDDEN.items()]
    lines += [f"- nothing imports {top}: {why}" for top, why in TOP.items()]
    lines.append(f"- {', '.join(TORCH_FREE)} import neither torch, Lightning nor PyG, nor a cgzoo module that does")
    lines.append(f"- {', '.join(LEAVES)} are leaves: they import no other cgzoo layer")
    lines += [f"- exception: {src} → {dst}: {why}" for (src, dst), why in EXCEPTIONS.items()]
    return lines


def test_docs_quote_the_rules():
    doc = re.sub(r"\s*\n\s+", " ", DOC.read_text())  # a rule may wrap onto indented lines
    missing = [line for line in rule_lines() if line not in doc]
    assert not missing, f"{DOC.relative_to(ROOT)} lacks these rule lines (copy them as they are):\n" + "\n".join(missing)
