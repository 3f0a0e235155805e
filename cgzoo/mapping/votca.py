"""Import a VOTCA CSG mapping file (one ``<cg_molecule>`` per file) as a :class:`MappingSpec`.

The format (VOTCA CSG manual, "Mapping files")::

    <cg_molecule>
      <name>HEX</name>                 <!-- CG molecule name: becomes MoleculeMapping.name -->
      <ident>HEX</ident>               <!-- atomistic molecule name: not needed, see below -->
      <topology>
        <cg_beads>
          <cg_bead>
            <name>A</name> <type>E</type> <mapping>END</mapping>
            <beads>1:HEX:C1 1:HEX:C2</beads>  <!-- RESNUM:RESNAME:ATOM, RESNUM 1-based in molecule -->
          </cg_bead>
        </cg_beads>
        <cg_bonded>                    <!-- any number of named <bond>/<angle>/<dihedral> groups -->
          <bond><name>b</name><beads>A B
                                     B C</beads></bond>
        </cg_bonded>
      </topology>
      <maps>
        <map><name>END</name><weights>15.035 14.027</weights></map>
      </maps>
    </cg_molecule>

Mapping to cgzoo: the residue-name sequence that recognises a molecule is read off the atom specs
(every residue 1..max must be named by some bead atom), since cgzoo topologies carry no molecule
names; ``<ident>`` is therefore ignored. Each ``<map>``'s ``<weights>`` become explicit bead
weights (VOTCA renormalises them, as cgzoo does). Bonded groups keep their terms, not their group
names. ``<symmetry>`` (VOTCA's ellipsoidal beads) is accepted and ignored: cgzoo uses bead
positions only. VOTCA's optional ``<d>`` force coefficients are refused: cgzoo's force map is
the sum of the bead's atomic forces, or with ``cgzoo map --force-map optimized`` (a VOTCA file has no
``force_map`` key) the least-variance consistent map of :mod:`cgzoo.mapping.force_map`. Note that VOTCA's default force map gives
zero-weight atoms no force while cgzoo sums them too; both are consistent force maps.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from cgzoo.errors import MappingError
from cgzoo.mapping.spec import MappingSpec, spec_from_doc
from cgzoo.terms import FIELD_ORDER

_VOTCA_BONDED = {"bond": "bonds", "angle": "angles", "dihedral": "dihedrals"}


def parse_votca(text: str, path: str | Path) -> MappingSpec:
    """Build a validated :class:`MappingSpec` (named after the file) from a VOTCA mapping XML.

    The XML is read into the document a cgzoo YAML mapping would give, so both formats pass the
    same schema (:class:`~cgzoo.mapping.spec.MappingFile`) and checks.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise MappingError(path, f"malformed XML: {exc}") from None
    if root.tag != "cg_molecule":
        raise MappingError(path, f"root element is <{root.tag}>, expected <cg_molecule>")
    mol_name = _text(root, "name", path, "<cg_molecule>")
    where = f"molecule {mol_name}"
    bead_elems = root.findall("topology/cg_beads/cg_bead")
    if not bead_elems:
        raise MappingError(path, f"{where}: no <topology><cg_beads><cg_bead> entries")
    maps = _read_maps(root, path, where)
    raw_beads = [_read_bead(elem, maps, path, where) for elem in bead_elems]
    residues = _residue_sequence(raw_beads, path, where)
    beads = [{"name": name, "type": btype, "atoms": atoms, "weights": weights} for name, btype, atoms, weights in raw_beads]
    molecule = {"name": mol_name, "residues": residues, "beads": beads, **_read_bonded(root, path, where)}
    return spec_from_doc({"name": Path(path).stem, "molecules": [molecule]}, path, text)


def _read_maps(root: ET.Element, path: str | Path, where: str) -> dict[str, list[float]]:
    """Collect ``<maps><map>`` weight lists by map name."""
    maps: dict[str, list[float]] = {}
    for elem in root.findall("maps/map"):
        name = _text(elem, "name", path, f"{where}: <map>")
        if name in maps:
            raise MappingError(path, f"{where}: map {name} is defined twice")
        if elem.find("d") is not None:
            raise MappingError(
                path,
                f"{where}: map {name} has <d> force coefficients, which cgzoo does not support "
                "(its force map is the sum of each bead's atomic forces)",
            )
        words = _text(elem, "weights", path, f"{where}: map {name}").split()
        try:
            maps[name] = [float(w) for w in words]
        except ValueError:
            raise MappingError(
                path, f"{where}: map {name} has a non-numeric weight in '{' '.join(words)}'"
            ) from None
    return maps


def _read_bead(
    elem: ET.Element, maps: dict[str, list[float]], path: str | Path, where: str
) -> tuple[str, str, list[str], list[float]]:
    """Read one ``<cg_bead>`` as (name, type, atom specs, weights from its map)."""
    name = _text(elem, "name", path, f"{where}: <cg_bead>")
    here = f"{where}, bead {name}"
    btype = _text(elem, "type", path, here)
    map_name = _text(elem, "mapping", path, here)
    atoms = _text(elem, "beads", path, here).split()
    if map_name not in maps:
        raise MappingError(path, f"{here}: <mapping> names map {map_name}, which is not among the <maps>")
    weights = maps[map_name]
    if len(weights) != len(atoms):
        raise MappingError(path, f"{here}: map {map_name} has {len(weights)} weights for {len(atoms)} atoms")
    return name, btype, atoms, weights


def _residue_sequence(
    raw_beads: list[tuple[str, str, list[str], list[float]]], path: str | Path, where: str
) -> list[str]:
    """Derive the molecule's residue names from the ``RESNUM:RESNAME:ATOM`` specs of all its beads."""
    names: dict[int, str] = {}
    for bead_name, _, atoms, _ in raw_beads:
        for atom in atoms:
            parts = atom.split(":")
            if len(parts) != 3 or not all(parts):
                raise MappingError(
                    path, f"{where}, bead {bead_name}: atom '{atom}' is not RESNUM:RESNAME:NAME"
                )
            try:
                resnum = int(parts[0])
            except ValueError:
                raise MappingError(
                    path, f"{where}, bead {bead_name}: atom '{atom}' has a non-integer residue number"
                ) from None
            if resnum < 1:
                raise MappingError(path, f"{where}, bead {bead_name}: atom '{atom}' has residue number < 1")
            if names.setdefault(resnum, parts[1]) != parts[1]:
                raise MappingError(
                    path,
                    f"{where}: residue {resnum} is called both {names[resnum]} and {parts[1]} in atom specs",
                )
    missing = [r for r in range(1, max(names) + 1) if r not in names]
    if missing:
        raise MappingError(
            path,
            f"{where}: residue {missing[0]} is named by no bead atom, so the residue sequence is unknown",
        )
    return [names[r] for r in range(1, max(names) + 1)]


def _read_bonded(root: ET.Element, path: str | Path, where: str) -> dict[str, list[list[str]]]:
    """Read every ``<cg_bonded>`` group, splitting its ``<beads>`` into consecutive 2/3/4-tuples."""
    bonded: dict[str, list[list[str]]] = {key: [] for key in FIELD_ORDER}
    for group in root.findall("topology/cg_bonded/*"):
        if group.tag not in _VOTCA_BONDED:
            raise MappingError(
                path, f"{where}: unknown bonded type <{group.tag}> (expected bond, angle, dihedral)"
            )
        key = _VOTCA_BONDED[group.tag]
        arity = FIELD_ORDER[key]
        label = (group.findtext("name") or "").strip() or "(unnamed)"
        names = _text(group, "beads", path, f"{where}: <{group.tag}> {label}").split()
        if len(names) % arity:
            raise MappingError(
                path,
                f"{where}: <{group.tag}> {label} lists {len(names)} bead names, not a multiple of {arity}",
            )
        bonded[key].extend(names[i : i + arity] for i in range(0, len(names), arity))
    return bonded


def _text(elem: ET.Element, tag: str, path: str | Path, where: str) -> str:
    """The stripped, non-empty text of child ``tag``, or a :class:`MappingError` saying it is missing."""
    child = elem.find(tag)
    value = (child.text or "").strip() if child is not None else ""
    if not value:
        raise MappingError(path, f"{where}: missing or empty <{tag}>")
    return value
