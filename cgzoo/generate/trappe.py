"""TraPPE-UA methanol, n-hexane and cyclohexane, with flexible C–C / C–O bonds.

Sources (parameters are written out below with their units):

* n-alkanes: M. G. Martin, J. I. Siepmann, J. Phys. Chem. B 1998, 102, 2569-2577.
  CH3 ε/k_B = 98 K, σ = 3.75 Å; CH2 ε/k_B = 46 K, σ = 3.95 Å; C–C 1.54 Å; CHx–CH2–CHy
  114°, k_θ/k_B = 62500 K/rad² (``E = k_θ/2 (θ-θ0)²``); torsion
  ``c1[1+cos φ] + c2[1-cos 2φ] + c3[1+cos 3φ]``, c1,c2,c3/k_B = 355.03, -68.19, 791.32 K.
* methanol: B. Chen, J. J. Potoff, J. I. Siepmann, J. Phys. Chem. B 2001, 105, 3093-3104.
  CH3 as above with q = +0.265 e; O ε/k_B = 93 K, σ = 3.02 Å, q = -0.700 e; H q = +0.435 e,
  no LJ; CH3–O 1.43 Å, O–H 0.945 Å; CH3–O–H 108.5°, k_θ/k_B = 55400 K/rad².
* cyclohexane: J. J. Keasler, S. M. Charan, C. D. Wick, I. G. Economou, J. I. Siepmann,
  J. Phys. Chem. B 2012, 116, 11234-11246. Ring CH2 ε/k_B = 52.5 K, σ = 3.91 Å; C–C 1.54 Å;
  angle 114°, 62500 K/rad²; ring torsion ``c0 + c1 cos ψ + c2 cos 2ψ + c3 cos 3ψ`` with
  c0..c3/k_B = 5073, 6840, 3509, 63 K. These numbers are from memory cross-checked against a
  public transcription of the TraPPE tables (MolSSI/EEX TraPPE notes), not against the paper
  itself. We read ψ as φ - 180° (ψ = 0 is trans, the Ryckaert–Bellemans convention): that
  puts the minimum (≈ 0 K) at φ ≈ ±61°, the gauche region every chair ring bond lives in;
  read with φ itself the minimum would sit at 119°, which a six-ring cannot reach. With this
  reading the liquid's rings are chairs with C–C–C ≈ 111.4° and |φ| ≈ 54°, the experimental
  cyclohexane geometry. The series is applied exactly (constant included) as an OpenMM
  Ryckaert–Bellemans torsion.

Deviation from TraPPE (documented in ``datasets/README.md``): TraPPE fixes all bond lengths.
Here only bonds that lie inside one CG bead of every shipped mapping are constrained (the
methanol O–H bond); C–C and C–O bonds are harmonic at the TraPPE length with the AMBER parm94
force constants (W. D. Cornell et al., J. Am. Chem. Soc. 1995, 117, 5179-5197: CT–CT
310 kcal/mol/Å², CT–OH 320 kcal/mol/Å² in AMBER's ``E = K (r-r0)²`` form, i.e. k = 2K here),
because constraint forces are missing from the written forces and would corrupt forces mapped
onto beads that a constrained bond connects.

Nonbonded: Lorentz–Berthelot mixing, LJ truncated at 14 Å with the analytic tail correction,
no intramolecular LJ or Coulomb within three bonds (so none in methanol or cyclohexane);
methanol's Coulomb is therefore purely intermolecular and handled by PME.
"""

from __future__ import annotations

from cgzoo.generate.geometry import bent_triatomic, chair_ring, zigzag_chain
from cgzoo.generate.spec import Angle, Bond, MoleculeSpec, RBTorsion, Site, SystemSpec, Torsion
from cgzoo.units import kelvin_energy_to_kcal_mol as k2kcal

#: TraPPE LJ cutoff (Å).
CUTOFF = 14.0
#: United-atom masses (amu).
MASS_CH3 = 15.035
MASS_CH2 = 14.027
MASS_O = 15.999
MASS_H = 1.008
#: Flexible bond force constants, k in ``E = k/2 (r - r0)²`` (kcal/(mol·Å²)): 2 × AMBER parm94 K.
K_CC = 2.0 * 310.0
K_CO = 2.0 * 320.0
#: TraPPE alkane geometry: C–C length (Å), CHx–CH2–CHy angle (degrees) and its k_θ/k_B (K/rad²).
R_CC = 1.54
ANGLE_CCC = 114.0
K_ANGLE_CCC_K = 62500.0
#: TraPPE alkane torsion coefficients c1, c2, c3 over k_B (K).
ALKANE_TORSION_K = (355.03, -68.19, 791.32)
#: TraPPE six-membered ring torsion coefficients c0, c1, c2, c3 over k_B (K).
RING6_TORSION_K = (5073.0, 6840.0, 3509.0, 63.0)


def _alkane_torsion_terms() -> tuple[tuple[int, float, float], ...]:
    """``c1[1+cos φ] + c2[1-cos 2φ] + c3[1+cos 3φ]`` as OpenMM periodic terms (n, k kcal/mol, phase °)."""
    c1, c2, c3 = (k2kcal(c) for c in ALKANE_TORSION_K)
    return ((1, c1, 0.0), (2, c2, 180.0), (3, c3, 0.0))


def _ring6_rb_coefficients() -> tuple[float, float, float, float, float, float]:
    """``c0 + c1 cos ψ + c2 cos 2ψ + c3 cos 3ψ`` as Ryckaert–Bellemans powers of cos ψ (kcal/mol).

    cos 2ψ = 2cos²ψ - 1 and cos 3ψ = 4cos³ψ - 3cos ψ give C0 = c0 - c2, C1 = c1 - 3c3,
    C2 = 2c2, C3 = 4c3.
    """
    c0, c1, c2, c3 = (k2kcal(c) for c in RING6_TORSION_K)
    return (c0 - c2, c1 - 3.0 * c3, 2.0 * c2, 4.0 * c3, 0.0, 0.0)


def _ch3(name: str, charge: float = 0.0) -> Site:
    return Site(name, "C", MASS_CH3, charge, 3.75, k2kcal(98.0))


def _ch2(name: str) -> Site:
    return Site(name, "C", MASS_CH2, 0.0, 3.95, k2kcal(46.0))


def _ring_ch2(name: str) -> Site:
    return Site(name, "C", MASS_CH2, 0.0, 3.91, k2kcal(52.5))


def _methanol() -> MoleculeSpec:
    """CH3–O–H; the O–H bond is constrained (inside the OH bead), the C–O bond harmonic."""
    r_co, r_oh, angle = 1.43, 0.945, 108.5
    return MoleculeSpec(
        resname="MOH",
        sites=(
            _ch3("C", charge=0.265),
            Site("O", "O", MASS_O, -0.700, 3.02, k2kcal(93.0)),
            Site("H", "H", MASS_H, 0.435, 1.0, 0.0),
        ),
        coordinates=bent_triatomic(r_co, r_oh, angle),
        bonds=(Bond(0, 1, r_co, K_CO), Bond(1, 2, r_oh, None)),
        angles=(Angle(0, 1, 2, angle, k2kcal(55400.0)),),
    )


def _hexane() -> MoleculeSpec:
    """CH3–(CH2)4–CH3, all-trans template; sites 1-5 and 1-6 apart interact through LJ."""
    n = 6
    sites = tuple(_ch3(f"C{i + 1}") if i in (0, n - 1) else _ch2(f"C{i + 1}") for i in range(n))
    return MoleculeSpec(
        resname="HEX",
        sites=sites,
        coordinates=zigzag_chain(n, R_CC, ANGLE_CCC),
        bonds=tuple(Bond(i, i + 1, R_CC, K_CC) for i in range(n - 1)),
        angles=tuple(Angle(i, i + 1, i + 2, ANGLE_CCC, k2kcal(K_ANGLE_CCC_K)) for i in range(n - 2)),
        torsions=tuple(Torsion(i, i + 1, i + 2, i + 3, _alkane_torsion_terms()) for i in range(n - 3)),
    )


def _cyclohexane() -> MoleculeSpec:
    """Six ring CH2 in ring order C1..C6, chair template."""
    n = 6
    ring = [(i, (i + 1) % n, (i + 2) % n, (i + 3) % n) for i in range(n)]
    return MoleculeSpec(
        resname="CHX",
        sites=tuple(_ring_ch2(f"C{i + 1}") for i in range(n)),
        coordinates=chair_ring(n, R_CC, ANGLE_CCC),
        bonds=tuple(Bond(i, (i + 1) % n, R_CC, K_CC) for i in range(n)),
        angles=tuple(Angle(a, b, c, ANGLE_CCC, k2kcal(K_ANGLE_CCC_K)) for a, b, c, _ in ring),
        rb_torsions=tuple(RBTorsion(a, b, c, d, _ring6_rb_coefficients()) for a, b, c, d in ring),
    )


_FLEX_NOTE = "C-C/C-O bonds harmonic (AMBER parm94 k) instead of TraPPE's fixed lengths"

METHANOL_UA = SystemSpec(
    name="methanol-ua",
    molecule=_methanol(),
    force_field="TraPPE-UA",
    citation="B. Chen, J. J. Potoff, J. I. Siepmann, J. Phys. Chem. B 2001, 105, 3093-3104",
    cutoff=CUTOFF,
    pme=True,
    default_n_molecules=450,
    guess_density=0.787,
    experimental_density=0.787,
    notes=(_FLEX_NOTE, "O-H bond constrained (inside the OH bead)"),
)

HEXANE_UA = SystemSpec(
    name="hexane-ua",
    molecule=_hexane(),
    force_field="TraPPE-UA",
    citation="M. G. Martin, J. I. Siepmann, J. Phys. Chem. B 1998, 102, 2569-2577",
    cutoff=CUTOFF,
    pme=False,
    default_n_molecules=140,
    guess_density=0.655,
    experimental_density=0.655,
    notes=(_FLEX_NOTE,),
)

CYCLOHEXANE_UA = SystemSpec(
    name="cyclohexane-ua",
    molecule=_cyclohexane(),
    force_field="TraPPE-UA",
    citation=(
        "J. J. Keasler, S. M. Charan, C. D. Wick, I. G. Economou, J. I. Siepmann, "
        "J. Phys. Chem. B 2012, 116, 11234-11246"
    ),
    cutoff=CUTOFF,
    pme=False,
    default_n_molecules=170,
    guess_density=0.774,
    experimental_density=0.774,
    notes=(
        _FLEX_NOTE,
        "ring torsion read with psi = phi - 180 deg (minimum in the gauche/chair region); see trappe.py",
    ),
)
