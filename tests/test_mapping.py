"""Tests for the atomistic→CG mapping: file formats, bead positions and forces, PBC handling, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from cgzoo.errors import MappingError
from cgzoo.io.base import AtomTopology, FrameChunk
from cgzoo.mapping import CGMapper, MappingSpec, load_mapping

SHIPPED = Path(__file__).resolve().parents[1] / "datasets" / "mappings"

HEXANE_NAMES = ["C1", "C2", "C3", "C4", "C5", "C6"]
HEXANE_MASSES = [15.035, 14.027, 14.027, 14.027, 14.027, 15.035]
CHAIN_BONDS = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]

#: Atom names, masses and bonds of cgzoo's built-in systems, for the shipped mappings.
SYSTEMS = {
    "spce-water": ("SOL", ["OW", "HW1", "HW2"], [15.9994, 1.008, 1.008], [(0, 1), (0, 2)]),
    "methanol-ua": ("MOH", ["C", "O", "H"], [15.035, 15.9994, 1.008], [(0, 1), (1, 2)]),
    "hexane-ua": ("HEX", HEXANE_NAMES, HEXANE_MASSES, CHAIN_BONDS),
    "cyclohexane-ua": ("CHX", HEXANE_NAMES, [14.027] * 6, [*CHAIN_BONDS, (5, 0)]),
}

HEXANE_3BEAD_YAML = """\
name: hexane-3bead
molecules:
  - name: HEX
    residues: [HEX]
    beads:
      - {name: A, type: E, atoms: [C1, C2], weights: [15.035, 14.027]}
      - {name: B, type: M, atoms: ["1:HEX:C3", "1:HEX:C4"], weights: [14.027, 14.027]}
      - {name: C, type: E, atoms: [C5, C6], weights: [14.027, 15.035]}
    bonds: [[A, B], [B, C]]
    angles: [[A, B, C]]
"""

HEXANE_3BEAD_XML = """\
<cg_molecule>
  <name>HEX</name>  <!-- CG molecule name -->
  <ident>HEX</ident>
  <topology>
    <cg_beads>
      <cg_bead>
        <name>A</name>
        <type>E</type>
        <mapping>END1</mapping>
        <beads> 1:HEX:C1
                1:HEX:C2 </beads>
      </cg_bead>
      <cg_bead>
        <name>B</name> <type>M</type> <mapping>MID</mapping>
        <beads>1:HEX:C3 <!-- inner carbons --> 1:HEX:C4</beads>
      </cg_bead>
      <cg_bead>
        <name>C</name><type>E</type><mapping>END2</mapping><beads>1:HEX:C5	1:HEX:C6</beads>
      </cg_bead>
    </cg_beads>
    <cg_bonded>
      <bond>
        <name>bond</name>
        <beads>
          A B
          B C
        </beads>
      </bond>
      <angle>
        <name>angle</name>
        <beads>A B C</beads>
      </angle>
    </cg_bonded>
  </topology>
  <maps>
    <map><name>END1</name><weights>15.035 14.027</weights></map>
    <map><name>MID</name><weights>
      14.027 14.027
    </weights></map>
    <map><name>END2</name><weights>14.027 15.035</weights></map>
  </maps>
</cg_molecule>
"""


def make_topology(
    resname: str | list[str],
    names: list[str],
    masses: list[float],
    bonds: list[tuple[int, int]],
    n_mol: int,
    constraints: list[tuple[int, int]] = (),
    resids: list[int] | None = None,
) -> AtomTopology:
    """``n_mol`` copies of one molecule; ``resname`` and ``resids`` may be per atom (multi-residue)."""
    n = len(names)
    per_atom_res = [resname] * n if isinstance(resname, str) else resname
    local_resids = resids if resids is not None else [1] * n
    span = max(local_resids)
    offsets = np.arange(n_mol)[:, None] * n

    def replicate(pairs: list[tuple[int, int]]) -> np.ndarray:
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        return (pairs[None] + offsets[:, :, None]).reshape(-1, 2)

    return AtomTopology(
        names=np.array(names * n_mol),
        resnames=np.array(per_atom_res * n_mol),
        resids=np.concatenate([np.array(local_resids) + m * span for m in range(n_mol)]),
        masses=np.array(masses * n_mol, dtype=float),
        molecule_ids=np.repeat(np.arange(n_mol), n),
        bonds=replicate(bonds),
        constraints=replicate(constraints),
        source="synthetic.top",
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def chunk(positions: np.ndarray, forces: np.ndarray, boxes: np.ndarray) -> FrameChunk:
    return FrameChunk(
        positions=positions, forces=forces, boxes=boxes, times=np.arange(len(positions), dtype=float)
    )


def hexane_coords(rng: np.random.Generator, n_mol: int, box: np.ndarray) -> np.ndarray:
    """Whole zig-zag hexanes (1.54 Å bonds) at random places and orientations, not wrapped."""
    zig = np.array([[1.26 * i, 0.89 * (i % 2), 0.0] for i in range(6)])
    out = []
    for _ in range(n_mol):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        out.append(zig @ q + rng.uniform(0, 1, 3) @ box)
    return np.concatenate(out)


def min_image(d: np.ndarray, box: np.ndarray) -> np.ndarray:
    frac = d @ np.linalg.inv(box)
    return (frac - np.round(frac)) @ box


# --- positions and forces -------------------------------------------------------------------


@pytest.mark.parametrize(
    "weights, expected", [("mass", [34 / 29, 1 / 29, 0]), ("geometry", [4 / 3, 1 / 3, 0])]
)
def test_com_and_cog_of_a_known_molecule(tmp_path, weights, expected):
    path = write(
        tmp_path,
        "m.yaml",
        f"""\
name: toy
weights: {weights}
molecules:
  - name: TOY
    residues: [TOY]
    beads: [{{name: T, type: T, atoms: [X, Y, Z]}}]
""",
    )
    top = make_topology("TOY", ["X", "Y", "Z"], [12.0, 16.0, 1.0], [(0, 1), (1, 2)], 1)
    mapper = CGMapper(load_mapping(path), top)
    pos = np.array([[[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [2.0, 1.0, 0.0]]]) + 5.0
    forces = np.array([[[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]]])
    beads, bead_forces = mapper.map_chunk(chunk(pos, forces, np.eye(3)[None] * 20))
    np.testing.assert_allclose(beads[0, 0], np.array(expected) + 5.0)
    np.testing.assert_allclose(bead_forces[0, 0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(mapper.masses, [29.0])


def test_total_force_per_molecule_equals_sum_over_its_beads(tmp_path):
    rng = np.random.default_rng(0)
    top = make_topology("HEX", HEXANE_NAMES, HEXANE_MASSES, CHAIN_BONDS, 5)
    mapper = CGMapper(load_mapping(write(tmp_path, "h.yaml", HEXANE_3BEAD_YAML)), top)
    box = np.eye(3) * 25.0
    pos = hexane_coords(rng, 5, box)[None].repeat(2, 0)
    forces = rng.normal(size=pos.shape)
    _, bead_forces = mapper.map_chunk(chunk(pos, forces, box[None].repeat(2, 0)))
    per_molecule_atoms = forces.reshape(2, 5, 6, 3).sum(axis=2)
    per_molecule_beads = np.stack(
        [bead_forces[:, mapper.molecule_ids == m].sum(axis=1) for m in range(5)], axis=1
    )
    np.testing.assert_allclose(per_molecule_beads, per_molecule_atoms)
    assert mapper.n_beads == 15
    assert mapper.type_names == ["E", "M"]
    np.testing.assert_array_equal(mapper.bead_types[:3], [0, 1, 0])
    np.testing.assert_array_equal(mapper.bonds[:4], [[0, 1], [1, 2], [3, 4], [4, 5]])
    np.testing.assert_array_equal(mapper.angles[:2], [[0, 1, 2], [3, 4, 5]])
    assert mapper.dihedrals.shape == (0, 4)
    np.testing.assert_allclose(mapper.masses[:3], [29.062, 28.054, 29.062])


@pytest.mark.parametrize(
    "box",
    [np.diag([14.0, 16.0, 15.0]), np.array([[14.0, 0.0, 0.0], [4.0, 15.0, 0.0], [-3.0, 3.5, 14.0]])],
    ids=["orthorhombic", "triclinic"],
)
def test_molecule_split_across_boundary_maps_like_its_whole_image(tmp_path, box):
    rng = np.random.default_rng(1)
    top = make_topology("HEX", HEXANE_NAMES, HEXANE_MASSES, CHAIN_BONDS, 8)
    mapper = CGMapper(load_mapping(write(tmp_path, "h.yaml", HEXANE_3BEAD_YAML)), top)
    whole = hexane_coords(rng, 8, box)
    whole[:6] += box[0] * 0.999 - whole[2]  # molecule 0 straddles the first cell face
    frac = whole @ np.linalg.inv(box)
    wrapped = (frac - np.floor(frac)) @ box
    assert np.abs(wrapped - whole).max() > 1.0  # some atoms really were moved by a lattice vector
    forces = rng.normal(size=(1, 48, 3))
    boxes = box[None]
    beads_whole, f_whole = mapper.map_chunk(chunk(whole[None], forces, boxes))
    beads_split, f_split = mapper.map_chunk(chunk(wrapped[None], forces, boxes))
    np.testing.assert_allclose(min_image(beads_split[0] - beads_whole[0], box), 0.0, atol=1e-9)
    np.testing.assert_allclose(f_split, f_whole)
    frac_beads = beads_split[0] @ np.linalg.inv(box)
    assert frac_beads.min() >= 0.0 and frac_beads.max() < 1.0
    shift = (mapper.make_whole(wrapped[None], boxes)[0] - whole).reshape(8, 6, 3)
    np.testing.assert_allclose(shift - shift[:, :1], 0.0, atol=1e-9)  # each molecule moved as one piece
    np.testing.assert_allclose(min_image(shift.reshape(-1, 3), box), 0.0, atol=1e-9)  # by lattice vectors


def test_make_whole_without_bonds_uses_the_first_atom(tmp_path):
    top = make_topology("SOL", ["OW", "HW1", "HW2"], [15.9994, 1.008, 1.008], [], 2)
    mapper = CGMapper(load_mapping(SHIPPED / "spce-water_1bead_com.yaml"), top)
    box = np.eye(3)[None] * 10.0
    pos = np.array([[[9.9, 5, 5], [0.6, 5, 5], [9.6, 5.9, 5], [1, 1, 1], [1.5, 1, 1], [1, 1.5, 1]]])
    whole = mapper.make_whole(pos, box)
    np.testing.assert_allclose(whole[0, :3], [[9.9, 5, 5], [10.6, 5, 5], [9.6, 5.9, 5]])
    np.testing.assert_allclose(whole[0, 3:], pos[0, 3:])


def test_molecule_spanning_several_residues(tmp_path):
    path = write(
        tmp_path,
        "chain.yaml",
        """\
name: trimer
molecules:
  - name: CHAIN
    residues: [HD, MD, HD]
    beads:
      - {name: B1, type: END, atoms: [CA, CB]}
      - {name: B2, type: MID, atoms: ["2:MD:CA", "2:MD:CB"], weights: geometry}
      - {name: B3, type: END, atoms: ["3:HD:CA", "3:HD:CB"]}
    bonds: [[B1, B2], [B2, B3]]
  - name: SOL
    residues: [SOL]
    beads: [{name: W, type: W, atoms: [OW, HW1, HW2]}]
""",
    )
    chain = make_topology(
        ["HD", "HD", "MD", "MD", "HD", "HD"],
        ["CA", "CB"] * 3,
        [12.0, 14.0, 13.0, 13.0, 14.0, 12.0],
        CHAIN_BONDS,
        2,
        resids=[1, 1, 2, 2, 3, 3],
    )
    water = make_topology("SOL", ["OW", "HW1", "HW2"], [16.0, 1.0, 1.0], [(0, 1), (0, 2)], 1)
    # order: chain 0, a water, chain 1 (molecule ids 0, 1, 2)

    def cat(*parts):
        return np.concatenate(parts)

    top = AtomTopology(
        names=cat(chain.names[:6], water.names, chain.names[6:]),
        resnames=cat(chain.resnames[:6], water.resnames, chain.resnames[6:]),
        resids=cat(chain.resids[:6], [7, 7, 7], chain.resids[6:] + 1),
        masses=cat(chain.masses[:6], water.masses, chain.masses[6:]),
        molecule_ids=np.array([0] * 6 + [1] * 3 + [2] * 6),
        bonds=cat(chain.bonds[:5], water.bonds + 6, chain.bonds[5:] + 3),
    )
    mapper = CGMapper(load_mapping(path), top)
    assert mapper.n_beads == 7
    assert mapper.bead_names.tolist() == ["B1", "B2", "B3", "W", "B1", "B2", "B3"]
    np.testing.assert_array_equal(mapper.molecule_ids, [0, 0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(mapper.bonds, [[0, 1], [1, 2], [4, 5], [5, 6]])
    assert mapper.molecule_counts == {"CHAIN": 2, "SOL": 1}
    pos = np.arange(45, dtype=float).reshape(1, 15, 3) * 0.1 + 1.0
    beads, forces = mapper.map_chunk(chunk(pos, np.ones((1, 15, 3)), np.eye(3)[None] * 50))
    np.testing.assert_allclose(beads[0, 0], (12 * pos[0, 0] + 14 * pos[0, 1]) / 26)
    np.testing.assert_allclose(beads[0, 5], (pos[0, 11] + pos[0, 12]) / 2)
    np.testing.assert_allclose(forces[0, 3], [3.0, 3.0, 3.0])


def test_float32_frames_stay_float32(tmp_path):
    top = make_topology("HEX", HEXANE_NAMES, HEXANE_MASSES, CHAIN_BONDS, 3)
    mapper = CGMapper(load_mapping(SHIPPED / "hexane-ua_2bead_com.yaml"), top)
    box = np.eye(3) * 20.0
    pos = hexane_coords(np.random.default_rng(2), 3, box)[None].astype(np.float32)
    beads, forces = mapper.map_chunk(chunk(pos, np.ones_like(pos), box[None].astype(np.float32)))
    assert beads.dtype == np.float32 and forces.dtype == np.float32


# --- file formats ---------------------------------------------------------------------------


def test_votca_xml_matches_equivalent_yaml(tmp_path):
    from_yaml = load_mapping(write(tmp_path, "hexane.yaml", HEXANE_3BEAD_YAML))
    from_xml = load_mapping(write(tmp_path, "hexane.xml", HEXANE_3BEAD_XML))
    assert isinstance(from_xml, MappingSpec)
    assert from_xml.canonical()["molecules"] == from_yaml.canonical()["molecules"]
    mol = from_xml.molecules[0]
    assert mol.residues == ["HEX"]
    assert [a.name for a in mol.beads[1].atoms] == ["C3", "C4"]
    assert mol.beads[2].weights == [14.027, 15.035]
    assert mol.bonds == [("A", "B"), ("B", "C")] and mol.angles == [("A", "B", "C")]


def test_sha256_ignores_formatting_but_not_content(tmp_path):
    a = load_mapping(write(tmp_path, "a.yaml", HEXANE_3BEAD_YAML))
    reformatted = "# comment\n" + HEXANE_3BEAD_YAML.replace(
        "[[A, B], [B, C]]", "\n      - [A, B]\n      - [B, C]"
    )
    b = load_mapping(write(tmp_path, "b.yaml", reformatted))
    c = load_mapping(write(tmp_path, "c.yaml", HEXANE_3BEAD_YAML.replace("type: M", "type: MM")))
    assert a.sha256 == b.sha256 != c.sha256
    assert len(a.sha256) == 64


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_mapping_loads_and_applies(path):
    system = path.stem.split("_")[0]
    resname, names, masses, bonds = SYSTEMS[system]
    n_bead_per_mol = int(path.stem.split("_")[1].removesuffix("bead"))
    spec = load_mapping(path)
    assert spec.name == path.stem
    rigid = bonds if n_bead_per_mol == 1 else []  # a rigid molecule inside one bead is fine
    top = make_topology(resname, names, masses, bonds, 4, constraints=rigid)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mapper = CGMapper(spec, top)
    assert mapper.n_beads == 4 * n_bead_per_mol
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 1.0, size=(2, top.n_atoms, 3)) + np.repeat(rng.uniform(0, 20, (4, 3)), len(names), 0)
    forces = rng.normal(size=pos.shape)
    beads, bead_forces = mapper.map_chunk(chunk(pos, forces, np.eye(3)[None].repeat(2, 0) * 20))
    assert beads.shape == bead_forces.shape == (2, mapper.n_beads, 3)
    np.testing.assert_allclose(bead_forces.sum(axis=1), forces.sum(axis=1))
    np.testing.assert_allclose(mapper.masses.sum(), top.masses.sum())
    assert mapper.provenance()["mapping_sha256"] == spec.sha256


# --- errors ---------------------------------------------------------------------------------


def _hexane_mapper(tmp_path: Path, text: str = HEXANE_3BEAD_YAML, **topology_kw) -> CGMapper:
    top = make_topology(
        topology_kw.pop("resname", "HEX"),
        topology_kw.pop("names", HEXANE_NAMES),
        HEXANE_MASSES,
        CHAIN_BONDS,
        3,
        **topology_kw,
    )
    return CGMapper(load_mapping(write(tmp_path, "bad.yaml", text)), top)


def test_unknown_residue_is_an_error(tmp_path):
    with pytest.raises(
        MappingError, match=r"bad\.yaml: molecule 0 \(residues HXN\) has no entry in the mapping"
    ):
        _hexane_mapper(tmp_path, resname="HXN")


def test_unknown_atom_is_an_error(tmp_path):
    names = ["C1", "C2", "C3", "CX", "C5", "C6"]
    with pytest.raises(
        MappingError, match=r"bad\.yaml: molecule type HEX: residue 1 \(HEX\) of molecule 0 has no atom C4"
    ):
        _hexane_mapper(tmp_path, names=names)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "atoms: [C5, C6], weights: [14.027, 15.035]",
            "atoms: [C4, C5, C6]",
            r"atom 1:HEX:C4 is in beads B, C; an atom shared by beads needs explicit weights",
        ),
        ("weights: [14.027, 15.035]", "weights: [1.0, -1.0]", r"beads\[C\]\.weights\[1\]: must be >= 0 \(got -1\.0\)$"),
        ("weights: [14.027, 15.035]", "weights: [1.0]", r"molecules\[HEX\]\.beads\[C\]: 1 weights for 2 atoms"),
        (
            "weights: [14.027, 15.035]",
            "weights: heavy",
            r"beads\[C\]: weights must be 'mass', 'geometry' or a list",
        ),
        (
            "angles: [[A, B, C]]",
            "angles: [[A, B, D]]",
            r"molecule HEX: angles entry \['A', 'B', 'D'\] names unknown bead D",
        ),
        ("{name: C, type: E,", "{name: B, type: E,", r"molecule HEX: bead name B is used twice"),
        ("atoms: [C1, C2], weights", "atoms: [], weights", r"beads\[A\]\.atoms: must have at least 1 item"),
        ('"1:HEX:C3"', '"2:HEX:C3"', r"names residue 2, but the molecule has 1 residue"),
        ("    bonds:", "    bond:", r"molecules\[HEX\]: unknown key\(s\) bond \(allowed: name, residues, beads"),
    ],
)
def test_bad_mapping_files_are_one_line_errors(tmp_path, old, new, message):
    text = HEXANE_3BEAD_YAML.replace(old, new, 1)
    assert text != HEXANE_3BEAD_YAML
    with pytest.raises(MappingError, match=r"bad\.yaml: .*" + message) as err:
        load_mapping(write(tmp_path, "bad.yaml", text))
    assert "\n" not in str(err.value)


def test_bad_votca_files_are_errors(tmp_path):
    with pytest.raises(MappingError, match=r"bad\.xml: malformed XML"):
        load_mapping(write(tmp_path, "bad.xml", HEXANE_3BEAD_XML.replace("</cg_beads>", "")))
    with pytest.raises(
        MappingError, match=r"bad\.xml: molecule HEX, bead B: <mapping> names map MID, which is not"
    ):
        load_mapping(
            write(tmp_path, "bad.xml", HEXANE_3BEAD_XML.replace("<name>MID</name>", "<name>MIDDLE</name>"))
        )
    with pytest.raises(MappingError, match=r"bad\.xml: molecule HEX: <bond> bond lists 3 bead names"):
        load_mapping(write(tmp_path, "bad.xml", HEXANE_3BEAD_XML.replace("B C\n", "B\n")))
    with pytest.raises(MappingError, match=r"bad\.txt: unknown mapping format"):
        load_mapping(write(tmp_path, "bad.txt", HEXANE_3BEAD_YAML))


def test_constraint_crossing_beads_is_an_error_unless_allowed(tmp_path):
    with pytest.raises(
        MappingError, match=r"bad\.yaml: 3 constrained bond\(s\) cross bead boundaries \(first: atom 1 "
    ):
        _hexane_mapper(tmp_path, constraints=[(1, 2)])
    with pytest.warns(UserWarning, match=r"constrained bond\(s\) cross bead boundaries.*biased"):
        mapper = CGMapper(
            load_mapping(tmp_path / "bad.yaml"),
            make_topology("HEX", HEXANE_NAMES, HEXANE_MASSES, CHAIN_BONDS, 3, constraints=[(1, 2)]),
            allow_constrained_crossing=True,
        )
    assert mapper.n_beads == 9
    # a constraint inside one bead is harmless: its forces cancel in the bead's sum
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _hexane_mapper(tmp_path, constraints=[(0, 1), (2, 3)])


def test_constraint_to_an_unmapped_atom_is_an_error(tmp_path):
    text = HEXANE_3BEAD_YAML.replace(
        "atoms: [C5, C6], weights: [14.027, 15.035]", "atoms: [C5], weights: [1.0]"
    )
    with pytest.raises(MappingError, match=r"atom 5 HEX1:C6 of molecule 0 \(no bead\)"):
        _hexane_mapper(tmp_path, text, constraints=[(4, 5)])


def test_shared_atom_with_explicit_weights_splits_its_force_and_warns(tmp_path):
    text = HEXANE_3BEAD_YAML.replace(
        "atoms: [C5, C6], weights: [14.027, 15.035]", "atoms: [C4, C5, C6], weights: [14.027, 14.027, 15.035]"
    )
    with pytest.warns(UserWarning, match=r"belong to several beads.*approximate"):
        mapper = _hexane_mapper(tmp_path, text)
    forces = np.zeros((1, 18, 3))
    forces[0, 3] = [2.0, 0, 0]  # C4 of molecule 0, weight 14.027 in both B and C
    _, bead_forces = mapper.map_chunk(chunk(np.zeros((1, 18, 3)), forces, np.eye(3)[None] * 30))
    np.testing.assert_allclose(bead_forces[0, 1:3, 0], [1.0, 1.0])
    np.testing.assert_allclose(mapper.masses.sum(), 3 * sum(HEXANE_MASSES))
