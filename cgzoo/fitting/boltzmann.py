"""Boltzmann inversion of bonded distributions: U(q) = −k_BT ln[P(q)/J(q)], tabulated or harmonic.

The Jacobian J is q² for bond lengths, sin θ for angles and 1 for dihedrals, so that U is the
potential of mean force of the internal coordinate itself. Samples are histogrammed per bonded
type on the training frames only; a table keeps the bins between the first and last sampled
ones (the prior's harmonic walls take over outside), a harmonic fit uses the sample moments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from cgzoo.errors import FitError
from cgzoo.fitting.force_matching import _bonded_geometry
from cgzoo.neighbors import CGGraph
from cgzoo.priors.base import Prior
from cgzoo.priors.harmonic import HarmonicAngle, HarmonicBond
from cgzoo.priors.tabulated import Tabulated
from cgzoo.priors.terms import term_index
from cgzoo.terms import KINDS, canonical_key
from cgzoo.units import kT

#: samples kept per bonded type (a uniform thinning beyond this keeps memory bounded)
MAX_SAMPLES = 2_000_000


def collect_bonded(type_names: list[str], graphs: Iterable[CGGraph], kinds: list[str]) -> dict[tuple[str, str], np.ndarray]:
    """Internal coordinates per (kind, type key) over ``graphs`` (Å or radians)."""
    samples: dict[tuple[str, str], list[np.ndarray]] = {}
    for graph in graphs:
        for kind in kinds:
            order = KINDS[kind]
            index = term_index(graph, order)
            if index.shape[1] == 0:
                continue
            _, q, _ = _bonded_geometry(graph, order)
            types = np.stack([graph.bead_type[k].numpy() for k in index], axis=1)
            keys = np.array([canonical_key(type_names, tuple(row)) for row in types])
            for key in np.unique(keys):
                samples.setdefault((kind, key), []).append(q.numpy()[keys == key])
    out = {}
    for term, parts in samples.items():
        arr = np.concatenate(parts)
        out[term] = arr[:: max(1, math.ceil(len(arr) / MAX_SAMPLES))]
    return out


def inverted_table(kind: str, key: str, q: np.ndarray, temperature: float, bins: int = 100) -> dict[str, list[float]]:
    """Boltzmann-inverted table of one bonded type from its samples."""
    if len(q) < 10:
        raise FitError(f"Boltzmann inversion: {kind} {key} has only {len(q)} samples")
    if kind == "dihedral":
        edges = np.linspace(-math.pi, math.pi, bins + 1)
    else:
        lo, hi = float(q.min()), float(q.max())
        if not hi > lo:
            raise FitError(f"Boltzmann inversion: {kind} {key} distribution has zero width")
        edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(q, bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    jac = {"bond": centres**2, "angle": np.sin(centres), "dihedral": np.ones_like(centres)}[kind]
    density = counts / np.maximum(jac, 1e-12)
    sampled = counts > 0
    u = np.full_like(centres, np.nan)
    u[sampled] = -kT(temperature) * np.log(density[sampled] / density[sampled].max())
    u = np.interp(centres, centres[sampled], u[sampled])  # fill empty inner bins
    if kind == "dihedral":
        x = np.append(centres - (edges[1] - edges[0]) / 2, math.pi)
        u = np.append(np.interp(x[:-1], centres, u, period=2 * math.pi), 0.0)
        u[-1] = u[0]
        smooth = np.convolve(np.concatenate([u[-3:-1], u, u[1:3]]), np.ones(5) / 5, mode="valid")
        return {"x": x.tolist(), "u": (smooth - smooth.min()).tolist()}
    smooth = np.convolve(np.pad(u, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    return {"x": centres.tolist(), "u": (smooth - smooth.min()).tolist()}


def fit_boltzmann(
    type_names: list[str],
    graphs: Iterable[CGGraph],
    temperature: float,
    bonds: str = "harmonic",
    angles: str = "table",
    dihedrals: str = "none",
    bins: int = 100,
) -> tuple[list[Prior], dict[str, Any]]:
    """Bonded priors by Boltzmann inversion; each kind ``harmonic``, ``table`` or ``none``."""
    choice = {"bond": bonds, "angle": angles, "dihedral": dihedrals}
    for kind, how in choice.items():
        allowed = ("table", "none") if kind == "dihedral" else ("harmonic", "table", "none")
        if how not in allowed:
            raise FitError(f"Boltzmann inversion: {kind}s must be one of {allowed}, got {how!r}")
    kinds = [k for k, how in choice.items() if how != "none"]
    samples = collect_bonded(type_names, graphs, kinds)
    priors: list[Prior] = []
    report: dict[str, Any] = {"method": "boltzmann_inversion", "temperature": temperature, "terms": {}}
    for kind in kinds:
        terms = {key: q for (k, key), q in samples.items() if k == kind}
        if not terms:
            continue
        for key, q in terms.items():
            report["terms"][f"{kind} {key}"] = {"samples": int(len(q)), "sampled_range": [float(q.min()), float(q.max())],
                                                "mean": float(q.mean()), "std": float(q.std())}
        if choice[kind] == "harmonic":
            cls = HarmonicBond if kind == "bond" else HarmonicAngle
            try:
                params = {key: cls.moments_to_params(q, temperature) for key, q in terms.items()}
            except ValueError as exc:
                raise FitError(f"Boltzmann inversion: {kind}: {exc}") from None
            priors.append(cls(type_names, params))
        else:
            tables = {key: inverted_table(kind, key, q, temperature, bins) for key, q in terms.items()}
            priors.append(Tabulated(type_names, kind, tables))
    return priors, report
