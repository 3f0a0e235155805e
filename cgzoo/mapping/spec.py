"""The atomistic→CG mapping as data: which atoms form which bead, with what weights, and the CG bonded terms.

A :class:`MappingSpec` is independent of any particular trajectory; :class:`cgzoo.mapping.CGMapper`
applies it to an :class:`~cgzoo.io.base.AtomTopology`. :func:`load_mapping` reads cgzoo's YAML
format (``.yaml``/``.yml``) or a VOTCA mapping XML (``.xml``, see :mod:`cgzoo.mapping.votca`).

YAML schema
-----------
.. code-block:: yaml

    name: hexane-3bead-com      # required: name of the mapping
    weights: mass               # optional default for every bead: mass (COM, the default) | geometry (COG)
    force_map: basic            # optional: basic (sum of each bead's atomic forces, the default) | optimized
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
``force_map: optimized`` asks for the least-variance force map fitted to the atomistic forces
(:mod:`cgzoo.mapping.force_map`, docs/force_maps.md) instead of the sum of each bead's atomic forces.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from cgzoo.errors import MappingError
from cgzoo.schema import NumberLoader, Strict, parse_yaml as parse_yaml_text, read_text, validate
from cgzoo.terms import FIELD_ORDER

WEIGHT_KEYWORDS = ("mass", "geometry")
#: How bead forces are made: ``basic`` sums each bead's atomic forces; ``optimized`` is the
#: least-variance consistent force map fitted to atomistic forces (:mod:`cgzoo.mapping.force_map`).
FORCE_MAP_KINDS = ("basic", "optimized")


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
    """A whole mapping: its molecule types, its force map kind and the file it came from (path and verbatim text)."""

    name: str
    molecules: list[MoleculeMapping]
    source: str = ""
    text: str = ""
    force_map: str = "basic"

    def canonical(self) -> dict[str, Any]:
        """The mapping's content as plain data, independent of file format, formatting and comments.

        ``force_map`` appears only when it is not ``basic``, so hashes of older mappings stay the same.
        """
        optional = {} if self.force_map == "basic" else {"force_map": self.force_map}
        return {
            **optional,
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
    text = read_text(path, "mapping file", MappingError)
    if suffix == ".xml":
        from cgzoo.mapping.votca import parse_votca

        return parse_votca(text, path)
    return parse_yaml(text, path)


class _Loader(NumberLoader):
    """YAML loader that keeps yes/no/on/off as strings, so atom names such as ON stay names."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in NumberLoader.yaml_implicit_resolvers.items()
}


def _number_as_name(raw: Any) -> Any:
    """YAML reads a name such as ``1`` as an integer; take its decimal text."""
    return str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw


def _check_name(name: str) -> str:
    """A name must be non-empty and without spaces (it becomes a column in tables and a token in files)."""
    if not name or any(c.isspace() for c in name):
        raise ValueError("must be a non-empty name without spaces")
    return name


def _check_type_name(name: str) -> str:
    """A bead type name also may not hold ``-``, which joins type keys (``A-B`` is the pair of A and B)."""
    if "-" in name:
        raise ValueError("a bead type may not contain '-' (it joins type keys such as A-B)")
    return name


#: A bead, type, residue, atom or molecule name.
Name = Annotated[str, BeforeValidator(_number_as_name), AfterValidator(_check_name)]
#: A bead type name.
TypeName = Annotated[Name, AfterValidator(_check_type_name)]


class BeadFile(Strict):
    """One ``beads`` entry: its atoms and how their positions are weighted (a keyword or one weight per atom)."""

    name: Name
    type: TypeName
    atoms: list[Name] = Field(min_length=1)
    weights: str | list[Annotated[float, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _weights(self) -> "BeadFile":
        """A keyword from :data:`WEIGHT_KEYWORDS`, or one non-negative weight per atom with a positive sum."""
        w = self.weights
        if isinstance(w, str) and w not in WEIGHT_KEYWORDS:
            raise ValueError(f"weights must be 'mass', 'geometry' or a list, not {w!r}")
        if isinstance(w, list) and len(w) != len(self.atoms):
            raise ValueError(f"{len(w)} weights for {len(self.atoms)} atoms")
        if isinstance(w, list) and sum(w) <= 0:
            raise ValueError(f"weights sum to {sum(w):g}; they must sum to a positive number")
        return self


class MoleculeFile(Strict):
    """One ``molecules`` entry: the residue-name sequence that recognises it, its beads and bonded terms."""

    name: Name
    residues: list[Name] = Field(min_length=1)
    beads: list[BeadFile] = Field(min_length=1)
    bonds: list[Annotated[list[Name], Field(min_length=2, max_length=2)]] | None = None
    angles: list[Annotated[list[Name], Field(min_length=3, max_length=3)]] | None = None
    dihedrals: list[Annotated[list[Name], Field(min_length=4, max_length=4)]] | None = None


class MappingFile(Strict):
    """A cgzoo YAML mapping (see the module docstring); VOTCA files are read into the same model."""

    name: Name
    weights: Literal[WEIGHT_KEYWORDS] = "mass"
    force_map: Literal[FORCE_MAP_KINDS] = "basic"
    molecules: list[MoleculeFile] = Field(min_length=1)


def parse_yaml(text: str, path: str | Path) -> MappingSpec:
    """Build a validated :class:`MappingSpec` from the text of a cgzoo YAML mapping."""
    return spec_from_doc(parse_yaml_text(text, path, _Loader, MappingError), path, text)


def spec_from_doc(doc: Any, path: str | Path, text: str) -> MappingSpec:
    """Check a parsed mapping document against :class:`MappingFile`, resolve its atoms and validate the whole."""
    checked = validate(MappingFile, doc, path, MappingError)
    molecules = [_molecule(m, checked.weights, path) for m in checked.molecules]
    spec = MappingSpec(name=checked.name, molecules=molecules, source=str(path), text=text, force_map=checked.force_map)
    validate_spec(spec)
    return spec


def _molecule(mol: MoleculeFile, default_weights: str, path: str | Path) -> MoleculeMapping:
    """A :class:`MoleculeMapping` from a checked ``molecules`` entry, atoms resolved against its residues."""
    beads = [
        BeadSpec(
            name=b.name,
            type=b.type,
            atoms=[parse_atom_ref(a, mol.residues, path, f"molecule {mol.name}, bead {b.name}") for a in b.atoms],
            weights=default_weights if b.weights is None else b.weights,
        )
        for b in mol.beads
    ]
    bonded = {key: [tuple(t) for t in getattr(mol, key) or []] for key in FIELD_ORDER}
    return MoleculeMapping(name=mol.name, residues=list(mol.residues), beads=beads, **bonded)


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
    """Raise :class:`MappingError` for cross-references the schema cannot check: duplicate names, shared atoms, bonded bead names."""
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
    """Check one molecule's bead names, atoms shared between beads, and the beads its bonded terms name."""
    where = f"molecule {mol.name}"
    names: set[str] = set()
    owners: dict[tuple[int, str], list[BeadSpec]] = {}
    for bead in mol.beads:
        here = f"{where}, bead {bead.name}"
        if bead.name in names:
            raise MappingError(path, f"{where}: bead name {bead.name} is used twice")
        names.add(bead.name)
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
    for key, arity in FIELD_ORDER.items():
        for term in getattr(mol, key):
            for bead_name in term:
                if bead_name not in names:
                    raise MappingError(
                        path, f"{where}: {key} entry {list(term)} names unknown bead {bead_name}"
                    )
            if len(set(term)) != arity:
                raise MappingError(path, f"{where}: {key} entry {list(term)} repeats a bead")
