"""Small configurations of every built-in network and prior: the cases the shared suites run on.

Every name in :data:`cgzoo.models.NETWORKS` needs an entry in :data:`NETWORK_CASES` and every
name in :data:`cgzoo.priors.PRIORS` at least one spec in :func:`prior_cases`; the suites fail,
naming what to add, until they have one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.priors import Prior, build_prior
from cgzoo.testing.systems import TYPES

#: cutoff (Å) of every network case and of the physics prior, so a model's cutoff is the network's
CUTOFF = 6.0

#: tiny hyper-parameters per registered network name, so the suite stays fast
NETWORK_CASES: dict[str, dict[str, Any]] = {
    "pair_mlp": {"cutoff": CUTOFF, "n_rbf": 8, "hidden": [16, 16], "embedding_dim": 4},
    "schnet": {"cutoff": CUTOFF, "hidden_channels": 16, "num_filters": 16, "num_interactions": 2, "num_gaussians": 12},
    "equivariant": {"cutoff": CUTOFF, "l_max": 2, "num_layers": 2, "channels": 8, "num_basis": 6, "radial_hidden": 16},
}

#: the same cases with each pair's bond separation in the edge features (the model checks' chains have 1-2, 1-3, 1-4
#: and intermolecular pairs), so the suite checks the bond-aware variant of every network too
BOND_AWARE_CASES: dict[str, dict[str, Any]] = {name: {**args, "bond_aware": True} for name, args in NETWORK_CASES.items()}

#: Lennard-Jones parameters of the physics prior under every Δ case
LJ_TRUE = {"A-A": {"sigma": 3.2, "epsilon": 0.3}, "A-B": {"sigma": 3.4, "epsilon": 0.2}, "B-B": {"sigma": 3.6, "epsilon": 0.25}}


def physics_prior() -> Prior:
    """LJ pairs (switched to zero at :data:`CUTOFF`), harmonic bonds and angles, a Fourier dihedral: every Δ case's prior."""
    return build_prior([
        {"class_path": "lennard_jones", "init_args": {"type_names": TYPES, "cutoff": CUTOFF, "params": LJ_TRUE,
                                                      "smoothing": "switch", "r_switch": 5.0}},
        {"class_path": "harmonic_bond", "init_args": {"type_names": TYPES, "params": {"A-B": {"k": 20.0, "r0": 3.8},
                                                                                   "B-B": {"k": 30.0, "r0": 3.7}}}},
        {"class_path": "harmonic_angle", "init_args": {"type_names": TYPES, "params": {"A-B-B": {"k": 8.0, "theta0": 110.0}}}},
        {"class_path": "fourier_dihedral", "init_args": {"type_names": TYPES, "params": {"A-B-B-A": {"k": [0.7, -0.2, 0.4]}}}},
    ])


def table(kind: str) -> dict[str, list[float]]:
    """A smooth example table (``x``, ``u`` and for pairs ``du``) of a ``pair``, ``bond``, ``angle`` or ``dihedral`` term."""
    if kind == "pair":
        x = np.linspace(2.5, 6.0, 36)
        g = 2.0 * np.exp(-(x - 2.5)) * np.cos(1.3 * x)
        dg = -g - 2.6 * np.exp(-(x - 2.5)) * np.sin(1.3 * x)
        u = g * (6.0 - x) ** 2  # value and slope vanish at the table's end, as a fitted table's do
        du = dg * (6.0 - x) ** 2 - 2.0 * g * (6.0 - x)
        return {"x": x.tolist(), "u": u.tolist(), "du": du.tolist()}
    if kind == "bond":
        x = np.linspace(3.0, 4.6, 33)
        return {"x": x.tolist(), "u": (3.0 * (x - 3.8) ** 2 + 0.2 * (x - 3.8) ** 3).tolist()}
    if kind == "angle":
        x = np.linspace(0.0, np.pi, 61)
        return {"x": x.tolist(), "u": (1.5 * (np.cos(x) + 0.3) ** 2).tolist()}
    x = np.linspace(-np.pi, np.pi, 73)
    return {"x": x.tolist(), "u": (0.8 * (1 + np.cos(x)) + 0.3 * (1 - np.cos(2 * x))).tolist()}


def _lammps_angle_file() -> Path:
    """A LAMMPS angle table in a fresh temporary directory (the ``table_file`` prior reads it)."""
    from cgzoo.tables import write_lammps

    path = Path(tempfile.mkdtemp(prefix="cgzoo-tables-")) / "angle.table"
    write_lammps(build_prior({"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "angle",
                                                                        "tables": {"A-B-B": table("angle")}}}), path)
    return path


def prior_cases() -> dict[str, dict[str, Any]]:
    """Case name → prior spec (``class_path`` + ``init_args``), covering every registered prior name at least once."""
    lj = {"A-A": {"sigma": 3.4, "epsilon": 0.2}, "A-B": {"sigma": 3.6, "epsilon": 0.15}, "B-B": {"sigma": 3.8, "epsilon": 0.1}}
    pair = {"type_names": TYPES, "cutoff": 6.0, "exclude": 3}
    return {
        "none": {"class_path": "none"},
        "lennard_jones": {"class_path": "lennard_jones", "init_args": {**pair, "params": lj}},
        "mie": {"class_path": "mie", "init_args": {**pair, "smoothing": "force_shift",
                                                   "params": {k: {**v, "n": 10.0, "m": 6.0} for k, v in lj.items()}}},
        "soft_repulsion": {"class_path": "soft_repulsion", "init_args": {**pair, "smoothing": "shift",
                                                                         "default": {"sigma": 3.5, "epsilon": 0.5, "n": 9.0}, "params": {}}},
        "wca": {"class_path": "wca", "init_args": {"type_names": TYPES, "params": lj, "exclude": 1}},
        "morse": {"class_path": "morse", "init_args": {**pair, "default": {"D": 0.3, "alpha": 1.2, "r0": 4.0}, "params": {}}},
        "pressure_ramp": {"class_path": "pressure_ramp", "init_args": {**pair, "default": {"amplitude": -0.4},
                                                                       "params": {"A-B": {"amplitude": 0.3}}}},
        "harmonic_bond": {"class_path": "harmonic_bond", "init_args": {"type_names": TYPES,
                                                                       "params": {"A-B": {"k": 20.0, "r0": 3.8}, "B-B": {"k": 30.0, "r0": 3.7}}}},
        "harmonic_angle": {"class_path": "harmonic_angle", "init_args": {"type_names": TYPES,
                                                                         "params": {"A-B-B": {"k": 8.0, "theta0": 110.0}}}},
        "cosine_angle": {"class_path": "cosine_angle", "init_args": {"type_names": TYPES,
                                                                     "params": {"A-B-B": {"k": 12.0, "theta0": 120.0}}}},
        "fourier_dihedral": {"class_path": "fourier_dihedral", "init_args": {"type_names": TYPES,
                                                                             "params": {"A-B-B-A": {"k": [0.7, -0.2, 0.4], "phase": [0.0, 180.0, 0.0]}}}},
        "tabulated": {"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "pair",
                                                               "tables": {k: table("pair") for k in ("A-A", "A-B", "B-B")}}},
        "tabulated_bond": {"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "bond",
                                                                    "tables": {k: table("bond") for k in ("A-B", "B-B")}}},
        "tabulated_angle": {"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "angle",
                                                                     "tables": {"A-B-B": table("angle")}}},
        "tabulated_dihedral": {"class_path": "tabulated", "init_args": {"type_names": TYPES, "kind": "dihedral",
                                                                        "tables": {"A-B-B-A": table("dihedral")}}},
        "table_file": {"class_path": "table_file", "init_args": {"type_names": TYPES, "kind": "angle", "fmt": "lammps",
                                                                 "path": str(_lammps_angle_file())}},
        "sum": {"class_path": "sum", "init_args": {"priors": [
            {"class_path": "lennard_jones", "init_args": {**pair, "params": lj}},
            {"class_path": "harmonic_bond", "init_args": {"type_names": TYPES, "params": {"A-B": {"k": 20.0, "r0": 3.8},
                                                                                        "B-B": {"k": 30.0, "r0": 3.7}}}}]}},
    }


def smooth_prior_cases() -> dict[str, dict[str, Any]]:
    """Pair priors whose energy and force go continuously to zero at the cutoff (the continuity check's cases)."""
    cases = prior_cases()
    lj = cases["lennard_jones"]
    return {"lennard_jones_switch": {**lj, "init_args": {**lj["init_args"], "smoothing": "switch", "r_switch": 5.0}},
            **{name: cases[name] for name in ("mie", "morse", "tabulated")}}
