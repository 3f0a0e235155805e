"""Bond length, angle and dihedral distributions per type key (:mod:`cgzoo.observables.bonded`), scored by JS divergence."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from cgzoo.observables import bonded
from cgzoo.observables.base import Column, Evaluation, Observable, Settings, StudyMetric
from cgzoo.observables.compare import js_divergence, mean_finite
from cgzoo.observables.plots import (
    REFERENCE,
    REFERENCE_STYLE,
    RUN_LW,
    colours,
    finish,
    format_number,
    runs_of,
    save,
    support,
)
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.terms import BONDED

_KIND_LABELS = {"bond": ("Bond length distributions", "r (Å)", "P(r) (1/Å)"),
                "angle": ("Bond angle distributions", "θ (deg)", "P(θ) (1/deg)"),
                "dihedral": ("Dihedral distributions", "φ (deg)", "P(φ) (1/deg)")}


class BondedResult(NamedTuple):
    """Per bonded kind and type key: (bin centres, probability density), and the histogram edges they were binned on."""

    distributions: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    edges: dict[str, dict[str, np.ndarray]]


class BondedDistributions(Observable[BondedResult]):
    """Every bonded kind's distributions, binned on edges spanning the reference's sampled range."""

    name = "bonded"
    columns = tuple(Column(f"{kind}_js", f"{kind} JS") for kind in BONDED)
    section = "Bonded distributions"
    study_columns = (*(f"{kind}_js" for kind in BONDED), "bonded_js")
    study_metrics = (StudyMetric("bonded_js", "bonded JS (bits)", "nvt"),)

    def measure(self, traj: CGTrajectory, settings: Settings) -> BondedResult:
        ref = settings.reference.get(self.name)
        edges = ref.edges if ref is not None else {
            kind: {key: bonded.default_edges(kind, values) for key, values in bonded.bonded_values(traj, kind).items()}
            for kind in BONDED}
        return BondedResult({kind: bonded.bonded_distributions(traj, kind, edges[kind]) for kind in BONDED}, edges)

    def compare(self, reference: BondedResult, run: BondedResult) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, per_type in reference.distributions.items():
            per_key = {k: js_divergence(p, run.distributions[kind][k][1]) for k, (_, p) in per_type.items()}
            out[f"{kind}_js"] = mean_finite(per_key.values())
            out[f"{kind}_js_per_key"] = per_key
        return out

    def describe(self, settings: dict[str, Any]) -> str:
        return "JS is the Jensen–Shannon divergence in bits (0 identical, 1 disjoint), averaged over type keys"

    def plot(self, results: dict[str, BondedResult], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        return [self._plot_kind(kind, results, metrics, plot_dir) for kind in BONDED
                if results[REFERENCE].distributions[kind]]

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        run = evaluations["nvt"][1] if "nvt" in evaluations else {}
        cells = {f"{kind}_js": run.get(f"{kind}_js") for kind in BONDED}
        found = [v for v in cells.values() if v is not None]
        return {**cells, "bonded_js": float(np.mean(found)) if found else None}

    @staticmethod
    def _plot_kind(kind: str, results: dict[str, BondedResult], metrics: dict[str, Any], plot_dir: Path) -> Path:
        """One panel per type key of a bonded kind; angles in degrees, densities per degree."""
        title, xlabel, ylabel = _KIND_LABELS[kind]
        colour = colours(metrics)
        ref = results[REFERENCE].distributions[kind]
        ncol = min(3, len(ref))
        nrow = math.ceil(len(ref) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.5 * ncol, 3.4 * nrow), squeeze=False)
        scale = 1.0 if kind == "bond" else np.pi / 180.0
        to_x = (lambda x: x) if kind == "bond" else np.degrees
        for ax, (key, (x, p)) in zip(axes.ravel(), ref.items()):
            ax.plot(to_x(x), p * scale, **REFERENCE_STYLE, label=REFERENCE)
            for label, result in runs_of(results):
                js = metrics["runs"][label][f"{kind}_js_per_key"].get(key)
                run_x, run_p = result.distributions[kind][key]
                ax.plot(to_x(run_x), run_p * scale, color=colour[label], lw=RUN_LW, label=f"{label} (JS {format_number(js)})")
            if kind != "dihedral":
                ax.set_xlim(*support(to_x(x), [p, *(r.distributions[kind][key][1] for _, r in runs_of(results))]))
            finish(ax, key, xlabel, ylabel)
        for ax in axes.ravel()[len(ref):]:
            ax.set_visible(False)
        fig.suptitle(title)
        return save(fig, plot_dir / f"{kind}s.png")
