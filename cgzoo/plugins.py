"""User plugins: prior, network and observable classes from outside cgzoo, loaded only from modules the user enabled.

A model file (checkpoint, ``prior.json``, fit spec) names its classes; a name that is not a
built-in family is looked up among the classes of *enabled* plugin modules and is never imported
because a file says so (importing a module runs its code). A plugin module is enabled by

- the environment variable ``CGZOO_PLUGINS`` (comma-separated module names),
- an installed package's entry point in group ``cgzoo.priors``, ``cgzoo.networks`` or
  ``cgzoo.observables`` (``my_prior = "mypkg.priors:MyPrior"``), or
- :func:`register_plugin` from Python.

Every subclass of the expected base found in an enabled module is known under its dotted path
(``mypkg.priors.MyPrior``, also the module's own name for it); an entry point's class also under
the entry point's name. Both registries (priors and networks) are a :class:`Registry`: built-in
names map to ``module:Class`` strings imported on first use, any other name goes to
:func:`plugin_class`.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType

from cgzoo.errors import CGZooError

PLUGINS_ENV = "CGZOO_PLUGINS"
ENTRY_POINT_GROUPS = {"prior class": "cgzoo.priors", "network": "cgzoo.networks", "observable": "cgzoo.observables"}

_registered: list[str] = []


class PluginError(CGZooError, ValueError):
    """A class name that is neither built in nor provided by an enabled plugin, or a plugin that fails to load."""


def register_plugin(module_name: str) -> None:
    """Enable the plugin module ``module_name`` for this process (as if it were listed in ``CGZOO_PLUGINS``)."""
    if module_name not in _registered:
        _registered.append(module_name)


def enabled_modules() -> list[str]:
    """The plugin modules enabled by :func:`register_plugin` and ``CGZOO_PLUGINS``, in that order."""
    from_env = [name.strip() for name in os.environ.get(PLUGINS_ENV, "").split(",") if name.strip()]
    return list(dict.fromkeys(_registered + from_env))


def _import_plugin(module_name: str) -> ModuleType:
    """Import an enabled plugin module; a one-line :class:`PluginError` if it cannot be imported."""
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the user's own code: any failure is reported in one line
        raise PluginError(f"plugin module {module_name!r} (enabled by {PLUGINS_ENV} or register_plugin) cannot be "
                          f"imported: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def _module_classes(module: ModuleType, base: type) -> dict[str, type]:
    """The subclasses of ``base`` in ``module``, under the module's name for them and their own dotted path."""
    found: dict[str, type] = {}
    for attr, value in vars(module).items():
        if inspect.isclass(value) and issubclass(value, base) and value is not base:
            found[f"{module.__name__}.{attr}"] = value
            found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def _entry_point_classes(base: type, kind: str) -> dict[str, type]:
    """The classes of installed entry points in ``kind``'s group, under the entry point's name and dotted path."""
    found: dict[str, type] = {}
    for point in entry_points(group=ENTRY_POINT_GROUPS[kind]):
        try:
            cls = point.load()
        except Exception as exc:  # noqa: BLE001 - an installed plugin's own code
            raise PluginError(f"entry point {point.name!r} ({point.value}) in group {point.group!r} cannot be loaded: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise PluginError(f"entry point {point.name!r} ({point.value}) is not a subclass of {_base_name(base)}")
        found[point.name] = cls
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


def plugin_classes(base: type, kind: str) -> dict[str, type]:
    """Every plugin class for ``base`` that the user enabled, by name (``kind``: ``prior class`` or ``network``)."""
    found: dict[str, type] = {}
    for module_name in enabled_modules():
        found.update(_module_classes(_import_plugin(module_name), base))
    found.update(_entry_point_classes(base, kind))
    return found


def _base_name(base: type) -> str:
    return f"{base.__module__.rsplit('.', 1)[0]}.{base.__name__}"


def plugin_class(path: str, base: type, kind: str, known: list[str]) -> type:
    """The enabled plugin class named ``path``; a one-line :class:`PluginError` saying how to enable it otherwise.

    Nothing is imported because of ``path`` itself: only modules the user enabled are.
    """
    classes = plugin_classes(base, kind)
    if path in classes:
        return classes[path]
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise PluginError(f"unknown {kind} {path!r}: not one of {sorted(known)} and not a plugin's dotted path")
    if module_name in enabled_modules():
        if hasattr(importlib.import_module(module_name), attr):
            raise PluginError(f"{path!r} is not a subclass of {_base_name(base)}")
        raise PluginError(f"cannot import {kind} {path!r}: plugin module {module_name!r} has no class {attr!r}")
    raise PluginError(f"{kind} {path!r} is not built in (one of {sorted(known)}) and not an enabled plugin; cgzoo "
                      f"never imports a module named in a file: enable it with {PLUGINS_ENV}={module_name} (or an "
                      f"entry point in group {ENTRY_POINT_GROUPS[kind]!r}) if you trust it")


@dataclass(frozen=True)
class Registry:
    """Names → built-in classes as ``module:Class`` strings, imported on first use, so a registry costs no imports.

    ``kind`` (``prior class`` or ``network``) picks the plugin entry-point group; a name that is not
    built in resolves only from enabled plugins (:func:`plugin_class`).
    """

    kind: str
    base: type
    builtins: dict[str, str]

    def resolve(self, name: str) -> type:
        """The class registered as ``name`` (or named by a built-in's dotted path), else an enabled plugin's class."""
        target = self.builtins.get(name) or {t.replace(":", "."): t for t in self.builtins.values()}.get(name)
        if target is None:
            return plugin_class(name, self.base, self.kind, list(self.builtins))
        module_name, _, attr = target.partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def name_of(self, cls: type) -> str:
        """The name that resolves back to ``cls``: its registered name, else its dotted path (a plugin's class)."""
        target = f"{cls.__module__}:{cls.__qualname__}"
        return next((name for name, t in self.builtins.items() if t == target), target.replace(":", "."))
