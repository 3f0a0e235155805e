"""Intermolecular g(r) per bead-type pair (:func:`cgzoo.observables.structure.rdf`), scored by its RMS difference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from cgzoo.observables.base import Column, Evaluation, Observable, Settings, StudyMetric
from cgzoo.observables.compare import mean_finite, rms_difference
from cgzoo.observables.plots import (
    REFERENCE,
    REFERENCE_STYLE,
    RUN_LW,
    colours,
    finish,
    format_number,
    runs_of,
    save,
)
from cgzoo.observables.structure import ALL_PAIRS, rdf
from cgzoo.observables.trajectory import CGTrajectory

#: type-pair key ("A-B", or "all" pooled) → (bin centres in Å, g)
RDFResult = dict[str, tuple[np.ndarray, np.ndarray]]


class RDF(Observable[RDFResult]):
    """g(r) of intermolecular pairs on the evaluation's common r grid (``r_max``, ``bins``)."""

    name = "rdf"
    columns = (Column("rdf_error", "g(r) RMS Δg"),)
    section = "Pair structure g(r)"
    study_columns = ("rdf_error",)
    study_metrics = (StudyMetric("rdf_error", "g(r) RMS error", "nvt"),)

    def measure(self, traj: CGTrajectory, settings: Settings) -> RDFResult:
        return rdf(traj, settings.r_max, settings.bins, intermolecular=True)

    def compare(self, reference: RDFResult, run: RDFResult) -> dict[str, Any]:
        per_pair = {k: rms_difference(g, run[k][1]) for k, (_, g) in reference.items() if k in run}
        return {"rdf_error": mean_finite(v for k, v in per_pair.items() if k != ALL_PAIRS), "rdf_error_per_pair": per_pair}

    def definition(self, reference: RDFResult) -> dict[str, Any]:
        return {"rdf": "intermolecular"}

    def describe(self, settings: dict[str, Any]) -> str:
        return (f"g(r) is intermolecular, up to {settings['r_max_A']:.2f} Å; RMS Δg is the root-mean-square difference "
                "of g(r) over r, averaged over type pairs")

    def plot(self, results: dict[str, RDFResult], metrics: dict[str, Any], runs: dict[str, CGTrajectory],
             plot_dir: Path) -> list[Path]:
        colour, files = colours(metrics), []
        for key, (r, g) in results[REFERENCE].items():
            fig, ax = plt.subplots(figsize=(6.5, 4))
            ax.plot(r, g, **REFERENCE_STYLE, label=REFERENCE)
            for label, result in runs_of(results):
                if key in result:
                    err = format_number(metrics["runs"][label]["rdf_error_per_pair"].get(key))
                    ax.plot(*result[key], color=colour[label], lw=RUN_LW, label=f"{label} (RMS Δg {err})")
            ax.axhline(1.0, color="grey", lw=0.6, ls=":")
            finish(ax, f"Intermolecular g(r), {'all type pairs' if key == ALL_PAIRS else key}", "r (Å)", "g(r)")
            files.append(save(fig, plot_dir / f"rdf_{key}.png"))
        return files

    def study_cells(self, evaluations: dict[str, Evaluation]) -> dict[str, Any]:
        return {"rdf_error": evaluations["nvt"][1].get("rdf_error")} if "nvt" in evaluations else {}
