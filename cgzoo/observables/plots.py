"""PNG figures of ``cgzoo evaluate``: reference and every run overlaid, one figure per observable.

Every plot draws the reference in thick black and each run in its own colour, with units on the
axes and the run's error metric in the legend, so a figure can be read without the tables.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cgzoo.observables import thermo  # noqa: E402
from cgzoo.observables.dynamics import A2_FS_TO_1E5_CM2_S  # noqa: E402
from cgzoo.observables.structure import ALL_PAIRS  # noqa: E402
from cgzoo.units import FS_TO_PS  # noqa: E402

if TYPE_CHECKING:
    from cgzoo.observables.report import Observables
    from cgzoo.observables.trajectory import CGTrajectory

#: Label of the reference in plots and tables.
REFERENCE = "reference"
_KIND_LABELS = {"bond": ("Bond length distributions", "r (Å)", "P(r) (1/Å)"),
                "angle": ("Bond angle distributions", "θ (deg)", "P(θ) (1/deg)"),
                "dihedral": ("Dihedral distributions", "φ (deg)", "P(φ) (1/deg)")}


def plot_all(obs: dict[str, Observables], trajs: dict[str, CGTrajectory], metrics: dict[str, Any],
             plot_dir: Path) -> dict[str, list[Path]]:
    """Write every figure into ``plot_dir``; returns the files per report section."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    runs = metrics["runs"]
    colours = {label: f"C{k % 10}" for k, label in enumerate(runs)}
    sections: dict[str, list[Path]] = {"Pair structure g(r)": [], "Bonded distributions": [], "Triplet angles": [],
                                       "Dynamics": [], "Thermodynamics": []}
    for key, (r, g) in obs[REFERENCE].rdf.items():
        fig, ax = plt.subplots(figsize=(6.5, 4))
        ax.plot(r, g, "k-", lw=2.2, label=REFERENCE)
        for label, o in _runs(obs):
            if key in o.rdf:
                err = format_number(runs[label]["rdf_error_per_pair"].get(key))
                ax.plot(*o.rdf[key], color=colours[label], lw=1.3, label=f"{label} (RMS Δg {err})")
        ax.axhline(1.0, color="grey", lw=0.6, ls=":")
        _finish(ax, f"Intermolecular g(r), {'all type pairs' if key == ALL_PAIRS else key}", "r (Å)", "g(r)")
        sections["Pair structure g(r)"].append(_save(fig, plot_dir / f"rdf_{key}.png"))
    for kind in _KIND_LABELS:
        if obs[REFERENCE].bonded[kind]:
            sections["Bonded distributions"].append(_plot_bonded(kind, obs, runs, colours, plot_dir))
    sections["Triplet angles"].append(_plot_triplet(obs, runs, colours, metrics["settings"]["shell_radii_A"], plot_dir))
    sections["Dynamics"].append(_plot_msd(obs, colours, plot_dir))
    if any(o.vacf is not None for o in obs.values()):
        sections["Dynamics"].append(_plot_vacf(obs, colours, plot_dir))
    sections["Thermodynamics"].append(_plot_thermo(trajs, obs, colours, metrics["settings"]["equil_fs"], plot_dir))
    return {name: files for name, files in sections.items() if files}


# --- figures --------------------------------------------------------------------------------


def _plot_bonded(kind: str, obs: dict[str, Observables], runs: dict[str, Any], colours: dict[str, str],
                 plot_dir: Path) -> Path:
    """One panel per type key of a bonded kind; angles in degrees, densities per degree."""
    title, xlabel, ylabel = _KIND_LABELS[kind]
    keys = list(obs[REFERENCE].bonded[kind])
    ncol = min(3, len(keys))
    nrow = math.ceil(len(keys) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.5 * ncol, 3.4 * nrow), squeeze=False)
    scale = 1.0 if kind == "bond" else np.pi / 180.0
    to_x = (lambda x: x) if kind == "bond" else np.degrees
    for ax, key in zip(axes.ravel(), keys):
        x, p = obs[REFERENCE].bonded[kind][key]
        ax.plot(to_x(x), p * scale, "k-", lw=2.2, label=REFERENCE)
        for label, o in _runs(obs):
            js = runs[label][f"{kind}_js_per_key"].get(key)
            ax.plot(to_x(o.bonded[kind][key][0]), o.bonded[kind][key][1] * scale, color=colours[label], lw=1.3,
                    label=f"{label} (JS {format_number(js)})")
        if kind != "dihedral":
            ax.set_xlim(*_support(to_x(x), [p, *(o.bonded[kind][key][1] for _, o in _runs(obs))]))
        _finish(ax, key, xlabel, ylabel)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return _save(fig, plot_dir / f"{kind}s.png")


def _plot_triplet(obs: dict[str, Observables], runs: dict[str, Any], colours: dict[str, str],
                  radii: dict[str, float], plot_dir: Path) -> Path:
    """Angle j–i–k distribution of first-shell neighbours, in degrees."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    theta, p = obs[REFERENCE].triplet
    ax.plot(np.degrees(theta), np.radians(p), "k-", lw=2.2, label=REFERENCE)
    for label, o in _runs(obs):
        ax.plot(np.degrees(o.triplet[0]), np.radians(o.triplet[1]), color=colours[label], lw=1.3,
                label=f"{label} (JS {format_number(runs[label]['triplet_js'])})")
    shells = ", ".join(f"{k} < {v:.2f} Å" for k, v in radii.items())
    _finish(ax, f"Triplet angles j–i–k of first-shell neighbours ({shells})", "θ (deg)", "P(θ) (1/deg)")
    ax.set_xlim(0, 180)
    return _save(fig, plot_dir / "triplet_angles.png")


def _plot_msd(obs: dict[str, Observables], colours: dict[str, str], plot_dir: Path) -> Path:
    """MSD against lag time on log–log axes, each fitted line 6Dt + b as a pale band over its window, D in the legend."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, o in obs.items():
        t, m = o.msd
        if not len(t):
            continue
        fit = o.msd_fit
        colour, lw = ("k", 2.2) if label == REFERENCE else (colours[label], 1.3)
        ax.loglog(t * FS_TO_PS, m, color=colour, lw=lw,
                  label=f"{label}: D = {format_number(fit.d_a2_fs * A2_FS_TO_1E5_CM2_S)} ×10⁻⁵ cm²/s")
        if np.isfinite(fit.d_a2_fs):
            window = np.linspace(*fit.window_fs, 20)
            ax.loglog(window * FS_TO_PS, 6 * fit.d_a2_fs * window + fit.intercept_a2, color=colour, lw=6, alpha=0.25)
    ax.plot([], [], color="grey", lw=6, alpha=0.25, label="fitted 6Dt + b (20–80 % of each longest lag)")
    _finish(ax, "Mean-squared displacement (centre-of-mass drift removed)", "lag time t (ps)", "MSD (Å²)")
    return _save(fig, plot_dir / "msd.png")


def _plot_vacf(obs: dict[str, Observables], colours: dict[str, str], plot_dir: Path) -> Path:
    """Normalised velocity autocorrelation of the runs that saved velocities, Green–Kubo D in the legend."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, o in _runs(obs):
        if o.vacf is not None:
            d = None if o.d_gk_a2_fs is None else o.d_gk_a2_fs * A2_FS_TO_1E5_CM2_S
            ax.plot(o.vacf[0] * FS_TO_PS, o.vacf[1], color=colours[label], lw=1.3,
                    label=f"{label}: D_GK = {format_number(d)} ×10⁻⁵ cm²/s")
    ax.axhline(0.0, color="grey", lw=0.6)
    _finish(ax, "Velocity autocorrelation (sampled at the saved-frame interval)", "lag time t (ps)",
            "⟨v(0)·v(t)⟩ / ⟨v²⟩")
    return _save(fig, plot_dir / "vacf.png")


def _plot_thermo(trajs: dict[str, CGTrajectory], obs: dict[str, Observables], colours: dict[str, str],
                 equil_fs: float, plot_dir: Path) -> Path:
    """Density, temperature and pressure of every run against time from its log, the reference's means dashed."""
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    ref = obs[REFERENCE]
    for ax, value in zip(axes, (ref.density_g_cm3, ref.temperature_K, ref.pressure_bar)):
        if value is not None:
            ax.axhline(value, color="k", lw=2.0, ls="--", label=f"{REFERENCE} (mean)")
    for label, traj in trajs.items():
        for ax, column in zip(axes, ("density_g_cm3", "temperature_K", "pressure_bar")):
            series = thermo.log_series(traj, column, start_fs=-np.inf)
            if series is not None and len(series[0]):
                ax.plot(series[0] * FS_TO_PS, series[1], color=colours[label], lw=1.0, label=label)
    title = "Runs' log.csv against time"
    if equil_fs > 0:
        title += " (grey: discarded equilibration)"
        for ax in axes:
            ax.axvspan(0.0, equil_fs * FS_TO_PS, color="grey", alpha=0.15)
    _finish(axes[0], title, None, "density (g/cm³)")
    _finish(axes[1], None, None, "temperature (K)")
    _finish(axes[2], None, "simulation time (ps)", "pressure (bar)")
    return _save(fig, plot_dir / "thermo.png")


# --- helpers ----------------------------------------------------------------------------------


def _runs(obs: dict[str, Observables]):
    """(label, observables) of every run, reference excluded."""
    return [(label, o) for label, o in obs.items() if label != REFERENCE]


def _support(x: np.ndarray, densities: list[np.ndarray]) -> tuple[float, float]:
    """x range where any density exceeds 0.1 % of its peak, padded by three bins (to zoom on narrow peaks)."""
    inside = np.flatnonzero(np.any([d > 1e-3 * d.max() for d in densities if d.max() > 0], axis=0))
    if not len(inside):
        return float(x[0]), float(x[-1])
    lo, hi = max(inside[0] - 3, 0), min(inside[-1] + 3, len(x) - 1)
    return float(x[lo]), float(x[hi])


def _finish(ax, title: str | None, xlabel: str | None, ylabel: str) -> None:
    """Title, axis labels, and a legend if anything is labelled."""
    if title:
        ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_number(value: float | None) -> str:
    """Compact number, or – when missing."""
    return "–" if value is None or not np.isfinite(value) else f"{value:.3g}"
