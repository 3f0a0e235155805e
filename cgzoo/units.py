"""The one place where cgzoo's units live, and every conversion at the library's boundaries.

Inside cgzoo every quantity is in these units (the LAMMPS ``real`` set):

==============  ==============================
length          Å
energy          kcal/mol
force           kcal/(mol·Å)
mass            amu (g/mol)
temperature     K
time            fs
velocity        Å/fs
pressure        bar (user-facing); kcal/(mol·Å³) for stress tensors
density         g/cm³ (reports only)
==============  ==============================

Cells are 3×3 matrices whose *rows* are the lattice vectors (the ASE convention).
Conversions are multiplicative factors named ``<FROM>_TO_<TO>`` or small helpers that say
which way they go. OpenMM and GROMACS share one unit system (nm, kJ/mol, ps, bar); ASE uses
Å, eV and its own time unit; LAMMPS ``real`` is cgzoo's own set.
"""

from __future__ import annotations

from typing import NamedTuple

#: Avogadro's number, 1/mol (exact, SI 2019).
AVOGADRO = 6.02214076e23
#: kJ per kcal (thermochemical calorie, exact).
KJ_PER_KCAL = 4.184
#: Boltzmann constant in kcal/(mol·K): R / 4184 J/kcal.
KB = 8.314462618 / 4184.0
#: One electronvolt in kcal/mol.
EV_IN_KCAL_MOL = 96.48533212331 / KJ_PER_KCAL

# --- length -------------------------------------------------------------------------------
NM_TO_ANGSTROM = 10.0
ANGSTROM_TO_NM = 0.1

# --- angle --------------------------------------------------------------------------------
#: Angles are radians inside cgzoo; LAMMPS and GROMACS tables quote degrees.
DEG_TO_RAD = 3.141592653589793 / 180.0
RAD_TO_DEG = 180.0 / 3.141592653589793

# --- energy -------------------------------------------------------------------------------
KJ_MOL_TO_KCAL_MOL = 1.0 / KJ_PER_KCAL
KCAL_MOL_TO_KJ_MOL = KJ_PER_KCAL
EV_TO_KCAL_MOL = EV_IN_KCAL_MOL
KCAL_MOL_TO_EV = 1.0 / EV_IN_KCAL_MOL

# --- force ---------------------------------------------------------------------------------
#: kJ/(mol·nm) (OpenMM, GROMACS) → kcal/(mol·Å).
KJ_MOL_NM_TO_KCAL_MOL_A = KJ_MOL_TO_KCAL_MOL / NM_TO_ANGSTROM
KCAL_MOL_A_TO_KJ_MOL_NM = 1.0 / KJ_MOL_NM_TO_KCAL_MOL_A
#: kcal/(mol·Å²) (bond force constants) → kJ/(mol·nm²) (OpenMM).
KCAL_MOL_A2_TO_KJ_MOL_NM2 = KCAL_MOL_TO_KJ_MOL / ANGSTROM_TO_NM**2
#: eV/Å (ASE) → kcal/(mol·Å).
EV_A_TO_KCAL_MOL_A = EV_TO_KCAL_MOL
KCAL_MOL_A_TO_EV_A = KCAL_MOL_TO_EV
#: kJ/(mol·Å) (MDAnalysis' base force unit) → kcal/(mol·Å).
KJ_MOL_A_TO_KCAL_MOL_A = KJ_MOL_TO_KCAL_MOL

# --- time ----------------------------------------------------------------------------------
PS_TO_FS = 1000.0
FS_TO_PS = 1e-3


# --- LAMMPS unit styles -----------------------------------------------------------------------
class LammpsUnits(NamedTuple):
    """Factors from one LAMMPS ``units`` style's lengths and forces to cgzoo units.

    A dump records neither its style nor its time step, so readers take both from the user.
    """

    length: float
    force: float


#: The LAMMPS ``units`` styles cgzoo can read (masses are g/mol = amu in both).
LAMMPS_UNIT_STYLES: dict[str, LammpsUnits] = {
    "real": LammpsUnits(length=1.0, force=1.0),
    "metal": LammpsUnits(length=1.0, force=EV_A_TO_KCAL_MOL_A),
}


# --- velocity -------------------------------------------------------------------------------
NM_PS_TO_A_FS = NM_TO_ANGSTROM / PS_TO_FS
#: ½ m v² with m in amu and v in Å/fs gives amu·Å²/fs²; multiply by this for kcal/mol.
AMU_A2_FS2_TO_KCAL_MOL = 1e-3 * 1e-20 / 1e-30 / 4184.0

# --- pressure ------------------------------------------------------------------------------
#: kcal/(mol·Å³) → bar.
KCAL_MOL_A3_TO_BAR = 4184.0 / (AVOGADRO * 1e-30) / 1e5
BAR_TO_KCAL_MOL_A3 = 1.0 / KCAL_MOL_A3_TO_BAR
ATM_TO_BAR = 1.01325
#: eV/Å³ (ASE stress) → kcal/(mol·Å³).
EV_A3_TO_KCAL_MOL_A3 = EV_TO_KCAL_MOL

#: Isothermal compressibility of liquid water near 300 K, 1/bar: the Berendsen barostats' default coupling.
WATER_COMPRESSIBILITY_PER_BAR = 4.57e-5

# --- density -------------------------------------------------------------------------------
#: amu/Å³ → g/cm³.
AMU_A3_TO_G_CM3 = 1e24 / AVOGADRO


def kT(temperature_k: float) -> float:
    """Thermal energy k_B·T in kcal/mol."""
    return KB * temperature_k


def kelvin_energy_to_kcal_mol(e_over_kb: float) -> float:
    """Convert an energy quoted as E/k_B in K (TraPPE's convention) to kcal/mol."""
    return e_over_kb * KB


def density_g_cm3(total_mass_amu: float, volume_a3: float) -> float:
    """Mass density in g/cm³ of ``total_mass_amu`` in ``volume_a3``."""
    return total_mass_amu / volume_a3 * AMU_A3_TO_G_CM3


#: Human-readable units of every stored quantity, written into dataset files as metadata.
DATASET_UNITS: dict[str, str] = {
    "positions": "angstrom",
    "forces": "kcal/mol/angstrom",
    "box": "angstrom",
    "masses": "amu",
    "time": "fs",
    "temperature": "K",
    "energy": "kcal/mol",
}
