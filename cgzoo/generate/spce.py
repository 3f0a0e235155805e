"""SPC/E water: Berendsen, Grigera & Straatsma, J. Phys. Chem. 1987, 91, 6269–6271.

Rigid three-site model (all three distances constrained, i.e. SETTLE), charges on all sites,
a single Lennard-Jones site on oxygen, PME electrostatics. The whole molecule is one CG bead in
every shipped mapping, so constraining it cannot hide forces between beads.
"""

from __future__ import annotations

import math

import numpy as np

from cgzoo.generate.geometry import bent_triatomic
from cgzoo.generate.spec import Bond, Constraint, MoleculeSpec, Site, SystemSpec
from cgzoo.units import KJ_MOL_TO_KCAL_MOL

#: O–H distance (Å) and H–O–H angle (degrees, the tetrahedral angle) of SPC/E.
R_OH = 1.0
ANGLE_HOH = 109.47
#: Oxygen LJ parameters as published: σ = 0.3166 nm, ε = 0.6502 kJ/mol.
SIGMA_O = 3.166
EPSILON_O = 0.6502 * KJ_MOL_TO_KCAL_MOL
#: Partial charges (e).
Q_O = -0.8476
Q_H = 0.4238
#: Masses (amu): standard atomic weights.
MASS_O = 15.9994
MASS_H = 1.008
#: LJ/real-space cutoff (Å); 9 Å is the cutoff of the original SPC/E simulations.
CUTOFF = 9.0


def _water() -> MoleculeSpec:
    """One SPC/E molecule; H sites carry no LJ (ε = 0, so their σ of 1 Å has no effect)."""
    h1, o, h2 = bent_triatomic(R_OH, R_OH, ANGLE_HOH)
    r_hh = 2.0 * R_OH * math.sin(math.radians(ANGLE_HOH) / 2.0)
    return MoleculeSpec(
        resname="SOL",
        sites=(
            Site("OW", "O", MASS_O, Q_O, SIGMA_O, EPSILON_O),
            Site("HW1", "H", MASS_H, Q_H, 1.0, 0.0),
            Site("HW2", "H", MASS_H, Q_H, 1.0, 0.0),
        ),
        coordinates=np.array([o, h1, h2]),
        bonds=(Bond(0, 1, R_OH, None), Bond(0, 2, R_OH, None)),
        extra_constraints=(Constraint(1, 2, r_hh),),
    )


SPCE_WATER = SystemSpec(
    name="spce-water",
    molecule=_water(),
    force_field="SPC/E",
    citation="H. J. C. Berendsen, J. R. Grigera, T. P. Straatsma, J. Phys. Chem. 1987, 91, 6269-6271",
    cutoff=CUTOFF,
    pme=True,
    default_n_molecules=300,
    guess_density=0.997,
    experimental_density=0.997,
    model_density=0.998,
    model_density_source=(
        "SPC/E with Ewald and LJ tail correction at 298 K, 1 bar; published values range 0.994-0.999 g/cm3"
    ),
    notes=("rigid: O-H and H-H distances constrained (SETTLE); the molecule is one CG bead",),
)
