"""The atomistic→CG mapping as data: which atoms form which bead, with what weights, and the CG bonded terms.

A :class:`MappingSpec` is independent of any particular trajectory; :class:`cgzoo.mapping.CGMapper`
applies it to an :class:`~cgzoo.io.base.AtomTopology`. :func:`load_mapping` reads cgzoo's YAML
format (``.yaml``/``.yml``) or a VOTCA mapping XML (``.xml``, see :mod:`cgzoo.mapping.votca`).

YAML schema
-----------
.. code-block:: yaml

    name: hexane-3bead-com      # required: name of the mapping
    weights: mass               # optional default for every bead: mass (COM, the default) | geometry (COG)
    molecules:                  # required: one entry per molecule type
      - name: HEX               # required, unique
        residues: [HEX]         # required: residue-name sequence of one molecule, used to recognise it
        beads:                  # required, non-empty, in output order
          - {name: A, type: E, atoms: [C1, C2]}
          - {name: B, type: M, atoms: ["1:HEX:C3", "1:HEX:C4"], weights: geometry}
          - {name: C, type: E, atoms: [C5, C6], weights: [0.5, 0.5]}
        bonds: [[A, B], [B, C]]  # optional: pairs of bead names
        angles: [[A, B, C]]      # optional: triples
        dihedrals: []            # optional: quadruples

An atom is ``NAME`` (atom ``NAME`` of the molecule's first residue) or ``RESNUM:RESNAME:NAME`` with
``RESNUM`` the 1-based position of the residue within the molecule (as in VOTCA) and ``RESNAME``
checked against ``residues``. A bead's ``weights`` is ``mass``, ``geometry`` or one non-negative
number per atom (normalised by their sum, which must be positive). An atom may appear in several
beads only if every such bead gives explicit weights; its force is then split in proportion to
them, which makes the force map approximate. Unknown keys are errors, so typos do not pass silently.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cgzoo.errors import MappingError

WEIGHT_KEYWORDS = ("mass", "geometry")
BONDED_ARITY = {"bonds": 2, "angles": 3, "dihedrals": 4}


@dataclass(frozen=True)
class AtomRef:
    """One atom of a molecule: residue position within the molecule (0-based), residue name, atom name."""

    residue: int
    resname: str
    name: str

    def label(self) -> str:
        """The ``RESNUM:RESNAME:NAME`` form (1-based residue) used in files and messages."""
        return f"{self.residue + 1}:{self.resname}:{self.name}"


@dataclass(frozen=True)
class BeadSpec:
    """One CG bead: its name, its type, its atoms and how their positions are weighted."""

    name: str
    type: str
    atoms: list[AtomRef]
    weights: str | list[float]

    @property
    def explicit_weights(self) -> bool:
        return not isinstance(self.weights, str)


@dataclass(frozen=True)
class MoleculeMapping:
    """How one molecule type (recognised by its residue-name sequence) maps to beads and bonded terms."""

    name: str
    residues: list[str]
    beads: list[BeadSpec]
    bonds: list[tuple[str, str]] = field(default_factory=list)
    angles: list[tuple[str, str, str]] = field(default_factory=list)
    dihedrals: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class MappingSpec:
    """A whole mapping: its molecule types plus the file it came from (path and verbatim text)."""

    name: str
    molecules: list[MoleculeMapping]
    source: str = ""
    text: str = ""

    def canonical(self) -> dict[str, Any]:
        """The mapping's content as plain data, independent of file format, formatting and comments."""
        return {
            "name": self.name,
            "molecules": [
                {
                    "name": mol.name,
                    "residues": list(mol.residues),
                    "beads": [
                        {
                            "name": b.name,
                            "type": b.type,
                            "atoms": [a.label() for a in b.atoms],
                            "weights": b.weights
                            if isinstance(b.weights, str)
                            else [float(w) for w in b.weights],
                        }
                        for b in mol.beads
                    ],
                    "bonds": [list(t) for t in mol.bonds],
                    "angles": [list(t) for t in mol.angles],
                    "dihedrals": [list(t) for t in mol.dihedrals],
                }
                for mol in self.molecules
            ],
        }

    @property
    def sha256(self) -> str:
        """Stable hash of :meth:`canonical`, recorded with mapped datasets for provenance."""
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def load_mapping(path: str | Path) -> MappingSpec:
    """Read a mapping file, choosing the format from its suffix (``.yaml``/``.yml`` or VOTCA ``.xml``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".xml"):
        raise MappingError(path, f"unknown mapping format '{suffix}' (expected .yaml, .yml or VOTCA .xml)")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(path, f"cannot read mapping file: {exc}") from None
    if suffix == ".xml":
        from cgzoo.mapping.votca import parse_votca

        return parse_votca(text, path)
    return parse_yaml(text, path)


class _Loader(yaml.SafeLoader):
    """YAML loader that keeps yes/no/on/off as strings, so atom names such as ON stay names."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str, path: str | Path) -> MappingSpec:
    """Build a validated :class:`MappingSpec` from the text of a cgzoo YAML mapping."""
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise MappingError(path, f"not valid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
    doc = _require_mapping(doc, path, "the file")
    _check_keys(doc, {"name", "weights", "molecules"}, path, "the top level")
    default = doc.get("weights", "mass")
    if default not in WEIGHT_KEYWORDS:
        raise MappingError(path, f"top-level weights must be 'mass' or 'geometry', not {default!r}")
    molecules = doc.get("molecules")
    if not isinstance(molecules, list) or not molecules:
        raise MappingError(path, "'molecules' must be a non-empty list")
    mols = [_parse_molecule(m, default, path) for m in molecules]
    spec = MappingSpec(
        name=_name(doc.get("name"), path, "mapping name"), molecules=mols, source=str(path), text=text
    )
    validate_spec(spec)
    return spec


def _parse_molecule(raw: Any, default_weights: str, path: str | Path) -> MoleculeMapping:
    """Turn one ``molecules`` entry into a :class:`MoleculeMapping` (validated later as a whole)."""
    raw = _require_mapping(raw, path, "each molecules entry")
    name = _name(raw.get("name"), path, "molecule name")
    where = f"molecule {name}"
    _check_keys(raw, {"name", "residues", "beads", *BONDED_ARITY}, path, where)
    residues = raw.get("residues")
    if not isinstance(residues, list) or not residues:
        raise MappingError(path, f"{where}: 'residues' must be a non-empty list of residue names")
    residues = [_name(r, path, f"{where}: residue name") for r in residues]
    beads_raw = raw.get("beads")
    if not isinstance(beads_raw, list) or not beads_raw:
        raise MappingError(path, f"{where}: 'beads' must be a non-empty list")
    beads = [_parse_bead(b, residues, default_weights, path, where) for b in beads_raw]
    bonded = {}
    for key, arity in BONDED_ARITY.items():
        terms = raw.get(key) or []
        if not isinstance(terms, list):
            raise MappingError(path, f"{where}: '{key}' must be a list of lists of {arity} bead names")
        bonded[key] = [_bonded_term(t, arity, path, f"{where}: {key}") for t in terms]
    return MoleculeMapping(name=name, residues=residues, beads=beads, **bonded)


def _parse_bead(
    raw: Any, residues: list[str], default_weights: str, path: str | Path, where: str
) -> BeadSpec:
    """Turn one ``beads`` entry into a :class:`BeadSpec`, resolving atom specs against ``residues``."""
    raw = _require_mapping(raw, path, f"{where}: each bead")
    name = _name(raw.get("name"), path, f"{where}: bead name")
    here = f"{where}, bead {name}"
    _check_keys(raw, {"name", "type", "atoms", "weights"}, path, here)
    atoms = raw.get("atoms")
    if not isinstance(atoms, list) or not atoms:
        raise MappingError(path, f"{here}: 'atoms' must be a non-empty list")
    refs = [parse_atom_ref(_name(a, path, f"{here}: atom"), residues, path, here) for a in atoms]
    weights = raw.get("weights", default_weights)
    if isinstance(weights, list):
        if not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            raise MappingError(path, f"{here}: weights must be numbers")
        weights = [float(w) for w in weights]
    return BeadSpec(
        name=name, type=_name(raw.get("type"), path, f"{here}: type"), atoms=refs, weights=weights
    )


def parse_atom_ref(text: str, residues: list[str], path: str | Path, where: str) -> AtomRef:
    """Parse ``NAME`` (first residue) or ``RESNUM:RESNAME:NAME`` (1-based residue within the molecule)."""
    parts = text.split(":")
    if len(parts) == 1:
        return AtomRef(0, residues[0], text)
    if len(parts) != 3 or not all(parts):
        raise MappingError(path, f"{where}: atom '{text}' is neither NAME nor RESNUM:RESNAME:NAME")
    try:
        resnum = int(parts[0])
    except ValueError:
        raise MappingError(path, f"{where}: atom '{text}' has a non-integer residue number") from None
    if not 1 <= resnum <= len(residues):
        raise MappingError(
            path,
            f"{where}: atom '{text}' names residue {resnum}, but the molecule has {len(residues)} residue(s)",
        )
    if parts[1] != residues[resnum - 1]:
        raise MappingError(
            path,
            f"{where}: atom '{text}' says residue {resnum} is {parts[1]}, but it is {residues[resnum - 1]}",
        )
    return AtomRef(resnum - 1, parts[1], parts[2])


def validate_spec(spec: MappingSpec) -> None:
    """Raise :class:`MappingError` for anything that makes the mapping ambiguous or ill-defined."""
    path = spec.source
    seen_names: set[str] = set()
    seen_residues: dict[tuple[str, ...], str] = {}
    for mol in spec.molecules:
        if mol.name in seen_names:
            raise MappingError(path, f"molecule {mol.name} is defined twice")
        seen_names.add(mol.name)
        key = tuple(mol.residues)
        if key in seen_residues:
            raise MappingError(
                path, f"molecules {seen_residues[key]} and {mol.name} have the same residues {' '.join(key)}"
            )
        seen_residues[key] = mol.name
        _validate_molecule(mol, path)


def _validate_molecule(mol: MoleculeMapping, path: str) -> None:
    """Check one molecule's beads (names, weights, shared atoms) and bonded terms."""
    where = f"molecule {mol.name}"
    if not mol.beads:
        raise MappingError(path, f"{where}: has no beads")
    names: set[str] = set()
    owners: dict[tuple[int, str], list[BeadSpec]] = {}
    for bead in mol.beads:
        here = f"{where}, bead {bead.name}"
        if bead.name in names:
            raise MappingError(path, f"{where}: bead name {bead.name} is used twice")
        names.add(bead.name)
        if not bead.atoms:
            raise MappingError(path, f"{here}: has no atoms")
        _validate_weights(bead, path, here)
        local: set[tuple[int, str]] = set()
        for atom in bead.atoms:
            key = (atom.residue, atom.name)
            if key in local:
                raise MappingError(path, f"{here}: atom {atom.label()} is listed twice")
            local.add(key)
            owners.setdefault(key, []).append(bead)
    for key, beads in owners.items():
        if len(beads) > 1 and not all(b.explicit_weights for b in beads):
            atom = next(a for a in beads[0].atoms if (a.residue, a.name) == key)
            listed = ", ".join(b.name for b in beads)
            raise MappingError(
                path,
                f"{where}: atom {atom.label()} is in beads {listed}; an atom shared by beads needs "
                "explicit weights in every one of them",
            )
    for key, arity in BONDED_ARITY.items():
        for term in getattr(mol, key):
            if len(term) != arity:
                raise MappingError(path, f"{where}: {key} entry {list(term)} needs {arity} bead names")
            for bead_name in term:
                if bead_name not in names:
                    raise MappingError(
                        path, f"{where}: {key} entry {list(term)} names unknown bead {bead_name}"
                    )
            if len(set(term)) != arity:
                raise MappingError(path, f"{where}: {key} entry {list(term)} repeats a bead")


def _validate_weights(bead: BeadSpec, path: str, here: str) -> None:
    """Check a bead's weights keyword, or its list: length, finite, positive sum, none negative."""
    if isinstance(bead.weights, str):
        if bead.weights not in WEIGHT_KEYWORDS:
            raise MappingError(
                path, f"{here}: weights must be 'mass', 'geometry' or a list, not '{bead.weights}'"
            )
        return
    w = bead.weights
    if len(w) != len(bead.atoms):
        raise MappingError(path, f"{here}: {len(w)} weights for {len(bead.atoms)} atoms")
    if not all(math.isfinite(x) for x in w):
        raise MappingError(path, f"{here}: weights must be finite numbers")
    if sum(w) <= 0:
        raise MappingError(path, f"{here}: weights sum to {sum(w):g}; they must sum to a positive number")
    if min(w) < 0:
        raise MappingError(path, f"{here}: weights must not be negative")


def _bonded_term(raw: Any, arity: int, path: str | Path, where: str) -> tuple[str, ...]:
    """Read one bonded term as a tuple of bead names; :func:`validate_spec` checks arity and names."""
    if not isinstance(raw, list):
        raise MappingError(path, f"{where}: entry {raw!r} must be a list of {arity} bead names")
    return tuple(_name(x, path, where) for x in raw)


def _require_mapping(raw: Any, path: str | Path, what: str) -> dict:
    if not isinstance(raw, dict):
        raise MappingError(path, f"{what} must be a mapping of keys to values")
    return raw


def _check_keys(raw: dict, allowed: set[str], path: str | Path, where: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise MappingError(
            path, f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def _name(raw: Any, path: str | Path, what: str) -> str:
    """A non-empty name; integers are accepted as their decimal text (YAML reads ``1`` as a number)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or not raw.strip() or raw != raw.strip() or any(c.isspace() for c in raw):
        raise MappingError(path, f"{what} must be a non-empty name without spaces, not {raw!r}")
    return raw
