"""Term kinds (pair, bond, angle, dihedral) and their type keys: one torch-free table for priors, fitting, observables and engines.

A type key joins the bead type names of a term with ``-`` in canonical order, the lexically
smaller of the tuple and its reverse (``"E-M"``, ``"E-M-E"``), since a term and its reverse are
the same interaction.
"""

from __future__ import annotations

from collections.abc import Sequence

#: beads per term of each kind
KINDS = {"pair": 2, "bond": 2, "angle": 3, "dihedral": 4}
#: the bonded kinds and the topology field (dataset, mapping, run.json) that lists their terms
BONDED = {"bond": "bonds", "angle": "angles", "dihedral": "dihedrals"}
#: beads per term of each topology field (``"bonds": 2`` …)
FIELD_ORDER = {field: KINDS[kind] for kind, field in BONDED.items()}


def canonical_names(names: Sequence[str]) -> str:
    """The type key of a term given by its bead type names."""
    names = tuple(names)
    return "-".join(min(names, tuple(reversed(names))))


def canonical_key(type_names: Sequence[str], types: Sequence[int]) -> str:
    """The type key of a term given by its bead type indices into ``type_names``."""
    return canonical_names([type_names[t] for t in types])
