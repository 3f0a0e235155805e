"""Names → network classes as ``module:Class`` strings, so an architecture's dependencies load only when it is used.

A user's network is named by its dotted path and resolves only from an enabled plugin module
(:mod:`cgzoo.plugins`); a checkpoint naming any other module never makes cgzoo import it.

Adding an architecture is one file in ``cgzoo/models/`` plus one line here; the shared suite
(:mod:`cgzoo.testing`) then fails until ``cgzoo/testing/cases.py`` gives it small hyper-parameters,
and checks it in every mode (``docs/extending.md``).
"""

from __future__ import annotations

from typing import Any

from cgzoo.models.base import Network
from cgzoo.plugins import Registry

#: name → ``module:Class``, imported when the name is first used
NETWORKS: dict[str, str] = {
    "pair_mlp": "cgzoo.models.pair_mlp:PairMLP",
    "schnet": "cgzoo.models.schnet:SchNet",
    "equivariant": "cgzoo.models.equivariant:Equivariant",
}
_REGISTRY = Registry("network", Network, NETWORKS)


def network_class(name: str) -> type[Network]:
    """The class registered as ``name`` (or a built-in's dotted path), or an enabled plugin's :class:`Network`."""
    return _REGISTRY.resolve(name)


def build_network(name: str, type_names: list[str], **hparams: Any) -> Network:
    """Instantiate a registered (or import-path) network for ``type_names``."""
    return network_class(name)(type_names=type_names, **hparams)


def network_spec(net: Network) -> dict[str, Any]:
    """The spec that rebuilds ``net`` with :func:`build_network`."""
    return {"name": _REGISTRY.name_of(type(net)), **net.config()}
