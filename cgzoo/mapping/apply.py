"""Apply a :class:`MappingSpec` to an atomistic topology and its frames: CG positions and CG forces.

:class:`CGMapper` recognises each molecule of the topology (atoms grouped by ``molecule_ids``; a
molecule's residues are its runs of atoms with the same resid and residue name, in order) by its
residue-name sequence, and builds two sparse matrices once:

* the position map ``C`` (beads × atoms): row ``I`` holds bead ``I``'s normalised weights, so
  ``R_I = Σ_i C_Ii r_i`` is its centre of mass (``mass``), of geometry (``geometry``) or an explicit
  weighted average;
* the force map ``D`` (beads × atoms): ``D_Ii = 1`` for every atom ``i`` listed in bead ``I``, so
  ``F_I = Σ_i D_Ii f_i`` is the sum of the bead's atomic forces (the ``basic`` force map). With
  ``force_map: optimized`` the mapper waits for :meth:`CGMapper.use_force_map` to install the
  least-variance consistent map fitted by :mod:`cgzoo.mapping.force_map`.

When summing forces is exact
----------------------------
Force matching (MS-CG; Noid et al. 2008, J. Chem. Phys. 128, 244114) needs the mapped force to
be a consistent estimator of the CG mean force. Summing the atomic forces of each bead is
consistent when, all together:

1. beads do not overlap (no atom is in two beads);
2. every bead's position is a normalised linear combination of its own atoms, with any weights
   (COM, COG or explicit; atoms of weight zero still contribute their force);
3. atoms in no bead are simply dropped (their forces are not used);
4. no constrained bond or rigid unit joins atoms of two different beads, or a bead atom to an
   unmapped atom. Constraint forces are absent from the forces MD engines write, so across a bead
   boundary they go missing from the sum; inside one bead they cancel and do no harm.

Condition 4 is checked against ``topology.constraints``: a crossing constraint is a
:class:`MappingError` unless ``allow_constrained_crossing=True``, which only warns that the mapped
forces are biased. An optimized force map is not checked here: it gives every constrained group
one weight by construction, so crossing constraints do not bias it. When an atom is shared by beads
(explicit weights, condition 1 broken) its force is split in proportion to its weights and a warning
says the basic force map is approximate.

Positions are first made whole (:meth:`CGMapper.make_whole`): along a spanning tree of each
molecule's bonds (constraints included) every atom is placed at the minimum image of its tree
parent, in fractional coordinates so triclinic cells work. This is exact whenever every bond is
shorter than half the cell's smallest perpendicular width. Atoms not connected to the molecule's
first atom by bonds (a molecule with no bonds, or with several unbonded pieces) are placed at the
minimum image of that first atom, which needs the molecule's extent to be under half the cell
width. Bead positions are returned wrapped into the primary cell.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from cgzoo.errors import InputError, MappingError
from cgzoo.geometry import UnwrapTree, make_whole, unwrap_tree, wrap
from cgzoo.io.base import AtomTopology, FrameChunk
from cgzoo.mapping.spec import FORCE_MAP_KINDS, MappingSpec, MoleculeMapping
from cgzoo.terms import FIELD_ORDER

if TYPE_CHECKING:
    from cgzoo.mapping.force_map import ForceMapFit


@dataclass
class _Molecule:
    """One molecule of the topology: its id, atom indices, residue names and each atom's residue position."""

    mol_id: int
    atoms: np.ndarray
    residues: tuple[str, ...]
    res_local: np.ndarray


@dataclass
class _Template:
    """A molecule type's beads resolved to local atom indices for one atom layout (names in file order)."""

    mol_type: int
    bead_local: np.ndarray  # (E,) bead index within the molecule, per (bead, atom) entry
    atom_local: np.ndarray  # (E,) atom index within the molecule
    fixed_weight: np.ndarray  # (E,) raw weight; NaN where the weight is the atom's mass


@dataclass(frozen=True)
class MoleculeLayout:
    """The molecules of one type that share one atom layout: row ``g`` holds molecule ``g``'s atoms and beads.

    Column ``j`` of ``atoms`` is the same atom (by residue and name) in every molecule, so per-molecule
    statistics of a layout can be pooled, as the optimized force map does.
    """

    mol_type: int
    atoms: np.ndarray  # (G, atoms per molecule) global atom indices
    beads: np.ndarray  # (G, beads per molecule) global bead indices


class CGMapper:
    """Maps atomistic frames of one topology to CG bead positions and forces with a :class:`MappingSpec`."""

    def __init__(
        self,
        spec: MappingSpec,
        topology: AtomTopology,
        allow_constrained_crossing: bool = False,
        force_map: str | None = None,
    ) -> None:
        """``force_map`` (``basic`` | ``optimized``) overrides the mapping file's ``force_map``."""
        topology.validate()
        self.spec = spec
        self.topology = topology
        self.force_map_kind = spec.force_map if force_map is None else force_map
        if self.force_map_kind not in FORCE_MAP_KINDS:
            raise MappingError(spec.source, f"force map must be one of {', '.join(FORCE_MAP_KINDS)}, "
                                            f"not {self.force_map_kind!r}")
        self.force_map_fit: ForceMapFit | None = None
        self.molecule_type_names = [m.name for m in spec.molecules]
        molecules = _split_molecules(topology)
        self._build(molecules)
        self._warn_shared_atoms()
        if self.force_map_kind == "basic":
            self._check_constraints(allow_constrained_crossing)
        self._tree = _unwrap_tree(topology)
        self._maps_by_dtype: dict[np.dtype, tuple[sp.csr_matrix, sp.csr_matrix]] = {}

    # --- construction ------------------------------------------------------------------------

    def _build(self, molecules: list[_Molecule]) -> None:
        """Resolve every molecule against the spec and assemble C, D and the per-bead arrays."""
        spec, top = self.spec, self.topology
        by_residues = {tuple(m.residues): k for k, m in enumerate(spec.molecules)}
        names = top.names.tolist()
        templates: dict[tuple, _Template] = {}
        groups: dict[tuple, list[int]] = {}
        offsets = np.zeros(len(molecules), dtype=np.int64)
        counts: Counter[str] = Counter()
        n_beads = 0
        self.atom_molecule_type = np.full(top.n_atoms, -1, dtype=np.int64)
        for idx, mol in enumerate(molecules):
            k = by_residues.get(mol.residues)
            if k is None:
                raise MappingError(
                    spec.source,
                    f"molecule {mol.mol_id} (residues {' '.join(mol.residues)}) has no entry in the mapping",
                )
            key = (k, tuple([names[a] for a in mol.atoms.tolist()]), tuple(mol.res_local.tolist()))
            if key not in templates:
                templates[key] = _make_template(k, spec.molecules[k], mol, names, spec.source)
            groups.setdefault(key, []).append(idx)
            offsets[idx] = n_beads
            n_beads += len(spec.molecules[k].beads)
            counts[spec.molecules[k].name] += 1
            self.atom_molecule_type[mol.atoms] = k

        self.n_beads = n_beads
        self.layouts: list[MoleculeLayout] = []
        bead_names = np.empty(n_beads, dtype=object)
        bead_type_names = np.empty(n_beads, dtype=object)
        self.molecule_ids = np.empty(n_beads, dtype=np.int64)
        self.bead_molecule_type = np.empty(n_beads, dtype=np.int64)
        rows, cols, raw = [], [], []
        bonded: dict[str, list[np.ndarray]] = {key: [] for key in FIELD_ORDER}
        for key, members in groups.items():
            tmpl = templates[key]
            mm = spec.molecules[tmpl.mol_type]
            atoms = np.stack([molecules[i].atoms for i in members])  # (G, n_atoms_in_molecule)
            off = offsets[members]  # (G,)
            slots = off[:, None] + np.arange(len(mm.beads))  # (G, n_beads_in_molecule)
            bead_names[slots] = np.array([b.name for b in mm.beads], dtype=object)
            bead_type_names[slots] = np.array([b.type for b in mm.beads], dtype=object)
            self.molecule_ids[slots] = np.array([molecules[i].mol_id for i in members])[:, None]
            self.bead_molecule_type[slots] = tmpl.mol_type
            self.layouts.append(MoleculeLayout(tmpl.mol_type, atoms, slots))
            entry_atoms = atoms[:, tmpl.atom_local]  # (G, E)
            rows.append((off[:, None] + tmpl.bead_local).ravel())
            cols.append(entry_atoms.ravel())
            raw.append(
                np.where(np.isnan(tmpl.fixed_weight), top.masses[entry_atoms], tmpl.fixed_weight).ravel()
            )
            local_index = {b.name: j for j, b in enumerate(mm.beads)}
            for bkey, arity in FIELD_ORDER.items():
                terms = getattr(mm, bkey)
                if terms:
                    local = np.array([[local_index[n] for n in t] for t in terms], dtype=np.int64)
                    bonded[bkey].append((off[:, None, None] + local[None]).reshape(-1, arity))

        rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
        raw_a = np.concatenate(raw).astype(np.float64)
        self.position_map = _position_matrix(rows_a, cols_a, raw_a, n_beads, top.n_atoms)
        self.basic_force_map = _force_matrix(rows_a, cols_a, raw_a, n_beads, top.n_atoms)
        self.force_map = self.basic_force_map
        self.bead_names = bead_names.astype(str)
        self.type_names = sorted(set(bead_type_names.tolist()))
        self.bead_types = np.searchsorted(np.array(self.type_names), bead_type_names.astype(str)).astype(
            np.int64
        )
        self.masses = np.asarray(self.basic_force_map @ top.masses.astype(np.float64))
        self.bonds, self.angles, self.dihedrals = (
            self._stack_terms(bonded[key], FIELD_ORDER[key]) for key in ("bonds", "angles", "dihedrals")
        )
        self.molecule_counts = dict(counts)

    def _stack_terms(self, parts: list[np.ndarray], arity: int) -> np.ndarray:
        """Concatenate bonded-term blocks in molecule order, keeping the mapping's order within a molecule."""
        if not parts:
            return np.zeros((0, arity), dtype=np.int64)
        terms = np.concatenate(parts)
        return terms[np.argsort(self.molecule_ids[terms[:, 0]], kind="stable")]

    def _warn_shared_atoms(self) -> None:
        """Warn that the force map is approximate when some atom belongs to several beads."""
        per_atom = np.diff(self.basic_force_map.tocsc().indptr)
        shared = np.flatnonzero(per_atom > 1)
        if len(shared):
            warnings.warn(
                f"{self.spec.source}: {len(shared)} atom(s) (first: {self._describe_atom(int(shared[0]))}) "
                "belong to several beads; their forces are split in proportion to their weights, so the "
                "force map is approximate (not a consistent MS-CG force map)",
                stacklevel=3,
            )

    def _check_constraints(self, allow: bool) -> None:
        """Refuse (or, if allowed, warn about) constraints whose two atoms map differently to beads."""
        cons = np.asarray(self.topology.constraints, dtype=np.int64).reshape(-1, 2)
        if not len(cons):
            return
        dcsc = self.basic_force_map.tocsc()
        diff = abs(dcsc[:, cons[:, 0]] - dcsc[:, cons[:, 1]])
        crossing = np.flatnonzero(np.asarray(diff.max(axis=0).todense()).ravel() > 1e-12)
        if not len(crossing):
            return
        a, b = (int(x) for x in cons[crossing[0]])
        problem = (
            f"{len(crossing)} constrained bond(s) cross bead boundaries (first: {self._describe_atom(a)} - "
            f"{self._describe_atom(b)}); constraint forces are absent from trajectory forces, so the mapped "
            "bead forces are biased"
        )
        if not allow:
            raise MappingError(
                self.spec.source,
                problem + " (remap with these atoms in one bead, or pass allow_constrained_crossing)",
            )
        warnings.warn(f"{self.spec.source}: {problem}", stacklevel=3)

    def _describe_atom(self, atom: int) -> str:
        """Atom index, residue, name, molecule and the beads it belongs to, for error messages."""
        top = self.topology
        beads = self.basic_force_map.tocsc()[:, atom].nonzero()[0]
        where = "bead " + "/".join(self.bead_names[beads]) if len(beads) else "no bead"
        return (
            f"atom {atom} {top.resnames[atom]}{top.resids[atom]}:{top.names[atom]} "
            f"of molecule {top.molecule_ids[atom]} ({where})"
        )

    def use_force_map(self, fit: ForceMapFit) -> None:
        """Map forces with an optimized force map fitted for this mapper (:mod:`cgzoo.mapping.force_map`)."""
        if self.force_map_kind != "optimized":
            raise MappingError(self.spec.source, "an optimized force map was given to a mapper whose force map "
                                                 f"is {self.force_map_kind}")
        if fit.matrix.shape != self.basic_force_map.shape:
            raise MappingError(self.spec.source, f"force map of shape {fit.matrix.shape} for "
                                                 f"{self.n_beads} beads and {self.topology.n_atoms} atoms")
        self.force_map = fit.matrix.tocsr()
        self.force_map_fit = fit
        self._maps_by_dtype.clear()

    @property
    def needs_force_map(self) -> bool:
        """True while an optimized force map is asked for but not yet installed by :meth:`use_force_map`."""
        return self.force_map_kind == "optimized" and self.force_map_fit is None

    # --- application ---------------------------------------------------------------------------

    def make_whole(self, positions: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Return (F,N,3) positions with every molecule unbroken across periodic boundaries."""
        return make_whole(positions, np.asarray(boxes, dtype=positions.dtype), self._tree)

    def map_chunk(self, chunk: FrameChunk) -> tuple[np.ndarray, np.ndarray]:
        """Bead positions (wrapped into the primary cell) and bead forces, both (F, n_beads, 3)."""
        n = self.topology.n_atoms
        if chunk.positions.shape[1:] != (n, 3) or chunk.forces.shape != chunk.positions.shape:
            raise InputError(
                self.topology.source,
                f"frames have positions {chunk.positions.shape} and forces {chunk.forces.shape}, "
                f"but the topology has {n} atoms",
            )
        if self.needs_force_map:
            raise MappingError(self.spec.source, "the optimized force map has not been fitted yet "
                                                 "(cgzoo.data.build.fit_force_map fits it from atomistic forces)")
        dtype = np.result_type(chunk.positions.dtype, np.float32)
        c_map, d_map = self._maps(dtype)
        boxes = np.asarray(chunk.boxes, dtype=dtype)
        beads = _apply(c_map, self.make_whole(chunk.positions.astype(dtype, copy=False), boxes))
        forces = _apply(d_map, chunk.forces.astype(dtype, copy=False))
        return wrap(beads, boxes), forces

    def _maps(self, dtype: np.dtype) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """C and D in ``dtype``, converted once per dtype."""
        if dtype not in self._maps_by_dtype:
            self._maps_by_dtype[dtype] = (self.position_map.astype(dtype), self.force_map.astype(dtype))
        return self._maps_by_dtype[dtype]

    def provenance(self) -> dict:
        """What was mapped with what, for dataset metadata."""
        mapped = np.asarray(self.basic_force_map.sum(axis=0)).ravel() > 0
        return {
            "mapping_name": self.spec.name,
            "mapping_source": self.spec.source,
            "mapping_sha256": self.spec.sha256,
            "molecule_counts": dict(self.molecule_counts),
            "n_atoms": int(self.topology.n_atoms),
            "n_atoms_dropped": int(np.count_nonzero(~mapped)),
            "n_beads": int(self.n_beads),
            "type_names": list(self.type_names),
            "force_map": self.force_map_provenance(),
        }

    def force_map_provenance(self) -> dict:
        """How bead forces are made: the kind, and for an optimized map its frames, ridge, variances and weights."""
        if self.force_map_fit is None:
            return {"kind": self.force_map_kind}
        return self.force_map_fit.provenance()


def _apply(matrix: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Apply a (M×N) sparse map to (F,N,3) per-atom vectors, giving (F,M,3)."""
    n_frames, n_atoms, _ = values.shape
    flat = np.ascontiguousarray(values.transpose(1, 0, 2)).reshape(n_atoms, n_frames * 3)
    out = matrix @ flat
    return np.ascontiguousarray(out.reshape(matrix.shape[0], n_frames, 3).transpose(1, 0, 2))


def _position_matrix(
    rows: np.ndarray, cols: np.ndarray, raw: np.ndarray, n_beads: int, n_atoms: int
) -> sp.csr_matrix:
    """C with each bead's raw weights divided by their sum."""
    total = np.bincount(rows, weights=raw, minlength=n_beads)
    return sp.csr_matrix((raw / total[rows], (rows, cols)), shape=(n_beads, n_atoms))


def _force_matrix(
    rows: np.ndarray, cols: np.ndarray, raw: np.ndarray, n_beads: int, n_atoms: int
) -> sp.csr_matrix:
    """D: 1 per (bead, atom) entry; an atom in several beads is split in proportion to its raw weights."""
    count = np.bincount(cols, minlength=n_atoms)[cols]
    total = np.bincount(cols, weights=raw, minlength=n_atoms)[cols]
    share = np.where(total > 0, raw / np.where(total > 0, total, 1.0), 1.0 / count)
    values = np.where(count > 1, share, 1.0)
    return sp.csr_matrix((values, (rows, cols)), shape=(n_beads, n_atoms))


def _split_molecules(top: AtomTopology) -> list[_Molecule]:
    """Group atoms by molecule id (in id order); split each into residues (runs of one resid and resname)."""
    mol = np.asarray(top.molecule_ids)
    order = np.argsort(mol, kind="stable")
    m, rid, rname = mol[order], np.asarray(top.resids)[order], np.asarray(top.resnames)[order]
    mol_start = np.r_[True, m[1:] != m[:-1]]
    res_start = mol_start | np.r_[True, (rid[1:] != rid[:-1]) | (rname[1:] != rname[:-1])]
    res_index = np.cumsum(res_start) - 1
    bounds = np.r_[np.flatnonzero(mol_start), len(m)]
    sizes = np.diff(bounds)
    res_local = res_index - np.repeat(res_index[bounds[:-1]], sizes)
    rname_list = rname.tolist()
    starts_list = res_start.tolist()
    molecules = []
    for s, e in itertools.pairwise(bounds.tolist()):
        residues = tuple(rname_list[i] for i in range(s, e) if starts_list[i])
        molecules.append(_Molecule(int(m[s]), order[s:e], residues, res_local[s:e]))
    return molecules


def _make_template(k: int, mm: MoleculeMapping, mol: _Molecule, names: list[str], source: str) -> _Template:
    """Resolve a molecule type's atom references to positions within one molecule's atom list."""
    lookup: dict[tuple[int, str], int] = {}
    duplicated: set[tuple[int, str]] = set()
    for j, (a, r) in enumerate(zip(mol.atoms.tolist(), mol.res_local.tolist(), strict=True)):
        if (r, names[a]) in lookup:
            duplicated.add((r, names[a]))
        lookup[(r, names[a])] = j
    bead_local, atom_local, fixed = [], [], []
    for b, bead in enumerate(mm.beads):
        for n, ref in enumerate(bead.atoms):
            key = (ref.residue, ref.name)
            if key not in lookup or key in duplicated:
                problem = "has no atom" if key not in lookup else "has more than one atom named"
                raise MappingError(
                    source,
                    f"molecule type {mm.name}: residue {ref.residue + 1} ({ref.resname}) of molecule "
                    f"{mol.mol_id} {problem} {ref.name} (bead {bead.name})",
                )
            bead_local.append(b)
            atom_local.append(lookup[key])
            if bead.explicit_weights:
                fixed.append(bead.weights[n])
            else:
                fixed.append(np.nan if bead.weights == "mass" else 1.0)
    return _Template(
        k,
        np.array(bead_local, dtype=np.int64),
        np.array(atom_local, dtype=np.int64),
        np.array(fixed, dtype=np.float64),
    )


def _unwrap_tree(top: AtomTopology) -> UnwrapTree:
    """The spanning forest of each molecule's bonds and constraints (:func:`~cgzoo.geometry.unwrap_tree`); a bond
    joining two molecules is an :class:`InputError`."""
    mol = np.asarray(top.molecule_ids)
    edges = np.concatenate(
        [
            np.asarray(top.bonds, dtype=np.int64).reshape(-1, 2),
            np.asarray(top.constraints, dtype=np.int64).reshape(-1, 2),
        ]
    )
    across = np.flatnonzero(mol[edges[:, 0]] != mol[edges[:, 1]])
    if len(across):
        i, j = edges[across[0]]
        raise InputError(top.source, f"bond between atoms {i} and {j} joins molecules {mol[i]} and {mol[j]}")
    return unwrap_tree(mol, edges)
