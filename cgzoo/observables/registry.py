"""Names → observable classes, in the order ``cgzoo evaluate`` measures, tabulates and plots them.

Built-ins are ``module:Class`` strings (as networks and priors are) and load when first used. Adding
an observable is one file in ``cgzoo/observables/families/`` plus one line here, or
:func:`register_observable` from any module for this process; the shared observable suite
(``tests/test_observable_suite.py``) then fails until it has a case for it. A user's observables
also come from the plugin modules the user enabled (``CGZOO_PLUGINS`` or an entry point in group
``cgzoo.observables``, :mod:`cgzoo.plugins`), so ``cgzoo evaluate`` measures them with no code change.
"""

from __future__ import annotations

import importlib

from cgzoo.observables.base import Observable
from cgzoo.plugins import plugin_classes

OBSERVABLES: dict[str, str | type[Observable]] = {
    "rdf": "cgzoo.observables.families.rdf:RDF",
    "bonded": "cgzoo.observables.families.bonded:BondedDistributions",
    "triplet": "cgzoo.observables.families.triplet:TripletAngles",
    "density": "cgzoo.observables.families.density:Density",
    "thermo": "cgzoo.observables.families.thermo:Thermo",
    "msd": "cgzoo.observables.families.msd:MSD",
    "vacf": "cgzoo.observables.families.vacf:VACF",
}


def register_observable(cls: type[Observable]) -> type[Observable]:
    """Add ``cls`` after the registered observables under ``cls.name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Observable)):
        raise TypeError(f"{cls!r} is not a subclass of cgzoo.observables.base.Observable")
    if cls.name in OBSERVABLES and OBSERVABLES[cls.name] is not cls:
        raise ValueError(f"an observable named {cls.name!r} is already registered")
    OBSERVABLES[cls.name] = cls
    return cls


def observable_class(name: str) -> type[Observable]:
    """The class registered as ``name``."""
    entry = OBSERVABLES[name]
    if isinstance(entry, type):
        return entry
    module_name, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def registered_observables() -> list[Observable]:
    """One instance of every registered observable, in registry order, then those of enabled plugins."""
    classes = [observable_class(name) for name in OBSERVABLES]
    for cls in plugin_classes(Observable, "observable").values():
        if cls not in classes and getattr(cls, "name", None) and cls.name not in OBSERVABLES:
            classes.append(cls)
    return [cls() for cls in classes]
