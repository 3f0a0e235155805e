"""The built-in liquids ``cgzoo generate`` can simulate, by name."""

from __future__ import annotations

from cgzoo.errors import InputError
from cgzoo.generate.spce import SPCE_WATER
from cgzoo.generate.spec import SystemSpec
from cgzoo.generate.trappe import CYCLOHEXANE_UA, HEXANE_UA, METHANOL_UA

SYSTEMS: dict[str, SystemSpec] = {s.name: s for s in (SPCE_WATER, METHANOL_UA, HEXANE_UA, CYCLOHEXANE_UA)}


def get_system(name: str) -> SystemSpec:
    """Return the built-in system ``name`` or raise :class:`InputError` listing the known ones."""
    try:
        return SYSTEMS[name]
    except KeyError:
        raise InputError(None, f"unknown system {name!r}; choose one of {', '.join(SYSTEMS)}") from None
