"""Fit a friction so that the CG model's molecular self-diffusion matches the reference's (``cgzoo fit-friction``).

A CG model diffuses too fast: the friction of the degrees of freedom its mapping removed is gone.
The reference D comes from the molecular centre-of-mass MSD of the reference dataset, fitted over one
lag window that must be diffusive there (:func:`cgzoo.observables.dynamics.is_diffusive`); the CG
runs are measured over the same window. The model runs short NVT runs at a few friction scales s
(``--gammas``, 1/ps); 1/D is close to linear in s (D ≈ kT/(M(γ₀ + s)) for Langevin), so
interpolating 1/D(s) between the measured points (:func:`solve_scale`) gives the s that matches,
which one more run checks (and, if it misses by more than the error bars, joins the points for a
second solve). One scale per system: every bead type gets the
same γ = s (per-type Langevin), so each molecule's centre of mass feels one rate whatever its
mapping (the friction coefficient mγ grows with the atoms a bead holds); DPD gives every type pair
γ = s on the reduced mass. Written to ``--out``: ``friction.json`` (:mod:`cgzoo.md.friction`),
``fit.json`` (every run's D, MSD and VACF), ``report.md``, ``d_gamma.png``, ``msd.png`` and
``vacf.png`` (molecular MSD of reference, model before, at the default Langevin 1/ps, and after;
the VACF of the model only, as a reference dataset has no velocities). The MD runs go to ``runs/`` beside them,
kept without their trajectories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cgzoo.data.dataset import load_topology
from cgzoo.data.run_record import read_run_json
from cgzoo.errors import InputError
from cgzoo.hashing import file_sha256
from cgzoo.md import SimulationSettings, simulate
from cgzoo.md.friction import FRICTION_FILE, FRICTIONS, Friction, load_friction
from cgzoo.observables import dynamics
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.outputs import atomic_dir, output_lock, save_figure, write_atomic, write_json_atomic
from cgzoo.terms import canonical_names
from cgzoo.units import FS_TO_PS, PS_TO_FS

#: 1e-5 cm²/s per Å²/fs, for reports
D_UNIT = dynamics.A2_FS_TO_1E5_CM2_S


def base_friction(kind: str, type_names: list[str], cutoff_A: float | None) -> Friction:
    """The friction of scale 1/ps: γ = 1 for every bead type (langevin) or type pair within ``cutoff_A`` (dpd)."""
    if kind == "langevin":
        return load_friction({"kind": "langevin", "gamma_per_ps": dict.fromkeys(type_names, 1.0)}, None)
    if kind == "dpd":
        if cutoff_A is None:
            raise InputError(None, "--kind dpd needs --dpd-cutoff (Å)")
        pairs = {canonical_names([a, b]) for a in type_names for b in type_names}
        return load_friction({"kind": "dpd", "cutoff_A": cutoff_A, "gamma_per_ps": dict.fromkeys(sorted(pairs), 1.0)}, None)
    raise InputError(None, f"--kind must be one of {', '.join(FRICTIONS)}, got {kind!r}")


def reference_diffusion(data: str | Path, window_fs: tuple[float, float]) -> tuple[dynamics.DiffusionEstimate, dict[str, list]]:
    """The reference's molecular D over ``window_fs`` and its MSD curve; an :class:`InputError` if the MSD is not
    diffusive there."""
    ref = dynamics.molecule_centres(CGTrajectory.from_dataset(data))
    estimate = dynamics.diffusion_estimate(ref, window_fs)
    lag, msd = dynamics.msd(ref, max_lags=60)
    if not dynamics.is_diffusive(estimate.loglog_slope):
        raise InputError(data, f"the molecular MSD is not diffusive over {window_fs[0] * FS_TO_PS:g}–"
                               f"{window_fs[1] * FS_TO_PS:g} ps (log-log slope {estimate.loglog_slope:.2f}, needs 1 ± "
                               f"{dynamics.SLOPE_TOLERANCE}); choose a later --window-ps")
    return estimate, {"msd_lag_fs": lag.tolist(), "msd_a2": msd.tolist()}


class Runner:
    """Runs the model at one friction and measures its molecular D and VACF (``settings`` fixed but for the friction)."""

    def __init__(self, model: str | Path, start: str, runs: Path, settings: dict[str, Any], equil_fs: float,
                 window_fs: tuple[float, float], threads: int | None) -> None:
        self.model, self.start, self.runs, self.settings = model, start, runs, settings
        self.equil_fs, self.window_fs, self.threads, self.count = equil_fs, window_fs, threads, 0

    def measure(self, label: str, friction: Friction | None) -> dict[str, Any]:
        """One run (``friction`` None: the default global Langevin 1/ps): its D, error, slope, engine and VACF."""
        out = self.runs / f"{self.count:02d}_{label}"
        extra = {} if friction is None else {"friction": friction.to_json()}
        s = SimulationSettings(**{**self.settings, "seed": self.settings["seed"] + self.count}, **extra)
        self.count += 1
        simulate(self.model, self.start, out, s, progress=False, threads=self.threads)
        traj = CGTrajectory.from_run(out)
        traj = dynamics.molecule_centres(traj.select(traj.times >= traj.times[0] + self.equil_fs))
        for frames in ("traj.traj", "traj.extxyz"):  # measured: runs keep run.json and log.csv, not 100s of MB of frames
            (out / frames).unlink(missing_ok=True)
        estimate = dynamics.diffusion_estimate(traj, self.window_fs)
        lag, vacf = dynamics.vacf(traj, max_lag_fraction=0.1)
        msd_lag, msd = dynamics.msd(traj, max_lags=60)
        return {"label": label, "run": out.name, **estimate._asdict(), "vacf_lag_fs": lag.tolist(), "vacf": vacf.tolist(),
                "msd_lag_fs": msd_lag.tolist(), "msd_a2": msd.tolist(),
                "engine": str(read_run_json(out / "run.json").get("engine"))}


def solve_scale(points: Sequence[tuple[float, float]], d_target: float) -> float:
    """The scale s ≥ 0 where 1/D(s) = 1/``d_target``, on the piecewise-linear 1/D through the (s, D) ``points``: between
    the first two neighbouring points that bracket it, else on the line through the two end points on its side (1/D is
    near linear in s, but curves at small s where the model's own friction matters, so a global line misses there)."""
    order = sorted(points)
    s = np.array([p[0] for p in order])
    inv = 1.0 / np.array([p[1] for p in order])
    target = 1.0 / d_target
    for k in range(len(s) - 1):
        if min(inv[k], inv[k + 1]) <= target <= max(inv[k], inv[k + 1]) and inv[k] != inv[k + 1]:
            return float(max(0.0, s[k] + (target - inv[k]) * (s[k + 1] - s[k]) / (inv[k + 1] - inv[k])))
    k = 0 if target < inv.min() else len(s) - 2
    slope = (inv[k + 1] - inv[k]) / (s[k + 1] - s[k])
    if slope <= 0:
        raise InputError(None, f"1/D does not grow with the friction between scales {s[k]:g} and {s[k + 1]:g} /ps; "
                               "the runs are too short or too noisy for a fit")
    return float(max(0.0, s[k] + (target - inv[k]) / slope))


def fit_friction(model: str | Path, data: str | Path, out: str | Path, kind: str = "langevin",
                 gammas: Sequence[float] = (10.0, 40.0), window_ps: tuple[float, float] = (2.0, 8.0),
                 run_ps: float = 20.0, equil_ps: float = 4.0, timestep_fs: float = 2.0, save_every_fs: float = 20.0,
                 dpd_cutoff: float | None = None, engine: str = "auto", seed: int = 0, threads: int | None = None,
                 install: bool = False, overwrite: bool = False,
                 progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit the ``kind`` friction of ``model`` to the molecular D of dataset ``data``; write ``out`` (module docstring).

    ``gammas``: friction scales (1/ps) of the first runs (a Langevin fit adds the default run as scale 1); ``window_ps``: the MSD lag window (at most half of
    ``run_ps``); each run lasts ``equil_ps`` + ``run_ps`` and saves every ``save_every_fs``. ``install`` also writes
    ``friction.json`` beside the model, where ``cgzoo simulate --friction auto`` reads it. Returns ``fit.json``'s content.
    """
    window_fs = (window_ps[0] * PS_TO_FS, window_ps[1] * PS_TO_FS)
    if not 0 < window_ps[0] < window_ps[1] <= run_ps / 2:
        raise InputError(None, f"--window-ps {window_ps} must be increasing, positive and at most half of --run-ps {run_ps}")
    if len(set(gammas) | ({1.0} if kind == "langevin" else set())) < 2 or min(gammas) < 0:
        raise InputError(None, f"--gammas needs two different scales ≥ 0 (besides the default 1/ps for langevin), "
                               f"got {list(gammas)}")
    save_every = round(save_every_fs / timestep_fs)
    if save_every < 1 or abs(save_every * timestep_fs - save_every_fs) > 1e-6:
        raise InputError(None, f"--save-every-fs {save_every_fs} must be a multiple of --timestep-fs {timestep_fs}")
    topology, temperature, n_frames = load_topology(data)
    friction = base_friction(kind, list(topology.type_names), dpd_cutoff)
    with atomic_dir(out, overwrite, FRICTION_FILE, "friction fit") as tmp:
        reference, reference_msd = reference_diffusion(data, window_fs)
        progress(f"reference D = {reference.d_a2_fs * D_UNIT:.3f} ± {reference.error_a2_fs * D_UNIT:.3f} ×10⁻⁵ cm²/s")
        settings = {"ensemble": "nvt", "temperature_K": temperature or 298.15, "timestep_fs": timestep_fs,
                    "steps": round((equil_ps + run_ps) * PS_TO_FS / timestep_fs / save_every) * save_every,
                    "save_every": save_every, "engine": engine, "seed": seed}
        runner = Runner(model, f"{data}@{n_frames - 1}", tmp / "runs", settings, equil_ps * PS_TO_FS, window_fs, threads)
        before = runner.measure("default", None)
        progress(f"default Langevin 1/ps: D = {before['d_a2_fs'] * D_UNIT:.3f} ×10⁻⁵ cm²/s")
        # the default is a Langevin friction of scale 1/ps, so a Langevin fit counts it as that point of the line
        grid = [{"scale_per_ps": 1.0, **before}] if kind == "langevin" else []
        for scale in [g for g in gammas if not (grid and g == 1.0)]:
            grid.append({"scale_per_ps": float(scale), **runner.measure(f"{kind}_{scale:g}", friction.scaled(scale))})
            progress(f"{kind} γ = {scale:g}/ps: D = {grid[-1]['d_a2_fs'] * D_UNIT:.3f} ×10⁻⁵ cm²/s")
        after, scale = _solve(grid, reference, runner, friction, kind, progress)
        result = _result(model, data, kind, window_ps, settings, (reference, reference_msd), before, grid, after, scale)
        scaled = friction.scaled(scale)
        fitted = type(scaled)(scaled.spec.model_copy(update={"fitted_to": _fitted_to(result)}))
        write_json_atomic(tmp / FRICTION_FILE, fitted.to_json())
        write_json_atomic(tmp / "fit.json", result)
        write_atomic(tmp / "report.md", _report(result))
        _plots(tmp, result)
    if install:
        beside = (Path(model) if Path(model).is_dir() else Path(model).parent) / FRICTION_FILE
        with output_lock(beside):
            write_json_atomic(beside, fitted.to_json())
    return result


def _solve(grid: list[dict[str, Any]], reference: dynamics.DiffusionEstimate, runner: Runner, friction: Friction,
           kind: str, progress: Callable[[str], None], attempts: int = 2) -> tuple[dict[str, Any], float]:
    """Solve 1/D(s) for the reference D, check it by a run, and re-solve with that run among the points if it missed."""
    after: dict[str, Any] = {}
    scale = 0.0
    for _ in range(attempts):
        scale = solve_scale([(g["scale_per_ps"], g["d_a2_fs"]) for g in grid], reference.d_a2_fs)
        after = {"scale_per_ps": scale, **runner.measure(f"{kind}_fitted", friction.scaled(scale))}
        progress(f"fitted {kind} γ = {scale:.3g}/ps: D = {after['d_a2_fs'] * D_UNIT:.3f} ×10⁻⁵ cm²/s")
        if abs(after["d_a2_fs"] - reference.d_a2_fs) <= 2 * np.hypot(after["error_a2_fs"], reference.error_a2_fs):
            break
        grid.append(after)
    return after, scale


def _result(model: str | Path, data: str | Path, kind: str, window_ps: tuple[float, float], settings: dict[str, Any],
            reference: tuple[dynamics.DiffusionEstimate, dict[str, list]], before: dict[str, Any],
            grid: list[dict[str, Any]], after: dict[str, Any], scale: float) -> dict[str, Any]:
    """``fit.json``: inputs, reference D, every run's D (Å²/fs and 10⁻⁵ cm²/s) and VACF, the fitted scale."""
    def run(r: dict[str, Any]) -> dict[str, Any]:
        return {**r, "D_1e-5_cm2_s": r["d_a2_fs"] * D_UNIT, "error_1e-5_cm2_s": r["error_a2_fs"] * D_UNIT}

    estimate, curve = reference
    return {"kind": kind, "model": str(model), "data": str(data), "data_sha256": file_sha256(data),
            "window_ps": list(window_ps), "settings": settings, "fitted_scale_per_ps": scale,
            "reference": {**estimate._asdict(), "D_1e-5_cm2_s": estimate.d_a2_fs * D_UNIT,
                          "error_1e-5_cm2_s": estimate.error_a2_fs * D_UNIT, **curve},
            "before": run(before), "grid": [run(g) for g in grid], "after": run(after)}


def _fitted_to(result: dict[str, Any]) -> dict[str, Any]:
    """What ``friction.json`` records of its fit."""
    keys = ("model", "data", "data_sha256", "window_ps", "fitted_scale_per_ps")
    return {**{k: result[k] for k in keys}, "temperature_K": result["settings"]["temperature_K"],
            "D_reference_1e-5_cm2_s": result["reference"]["D_1e-5_cm2_s"],
            "D_fitted_1e-5_cm2_s": result["after"]["D_1e-5_cm2_s"],
            "method": "molecular COM MSD = 6Dt + b over window_ps; 1/D linear in the friction scale"}


def _report(result: dict[str, Any]) -> str:
    """``report.md``: the reference D and every run's D and error."""
    ref = result["reference"]
    lines = [f"# Friction fit ({result['kind']})", "",
             (f"Model `{result['model']}`, reference `{result['data']}`; molecular centre-of-mass MSD fitted over "
              f"{result['window_ps'][0]:g}–{result['window_ps'][1]:g} ps (reference log–log slope {ref['loglog_slope']:.2f})."),
             "", "| run | friction scale (1/ps) | D (10⁻⁵ cm²/s) | ± | D / D_ref | engine |", "|---|---|---|---|---|---|",
             f"| reference | | {ref['D_1e-5_cm2_s']:.3f} | {ref['error_1e-5_cm2_s']:.3f} | 1 | |"]
    rows = [("default Langevin 1/ps", None, result["before"])] + [(g["label"], g["scale_per_ps"], g) for g in result["grid"]]
    rows.append(("fitted", result["after"]["scale_per_ps"], result["after"]))
    for label, scale, r in rows:
        lines.append(f"| {label} | {'' if scale is None else f'{scale:.3g}'} | {r['D_1e-5_cm2_s']:.3f} | "
                     f"{r['error_1e-5_cm2_s']:.3f} | {r['d_a2_fs'] / ref['d_a2_fs']:.2f} | {r['engine']} |")
    lines += ["", f"Fitted scale: **{result['fitted_scale_per_ps']:.4g} /ps** (friction.json).", ""]
    return "\n".join(lines)


def _plots(out: Path, result: dict[str, Any]) -> None:
    """``d_gamma.png`` (D against the friction scale, the line through 1/D, the reference band) and ``vacf.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = result["reference"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    pts = result["grid"] + [result["after"]]
    s = np.array([p["scale_per_ps"] for p in pts])
    d = np.array([p["D_1e-5_cm2_s"] for p in pts])
    ax.errorbar(s, d, yerr=[p["error_1e-5_cm2_s"] for p in pts], fmt="o", color="C0", label=f"CG, {result['kind']}")
    order = np.argsort(s)
    ax.plot(s[order], d[order], color="C0", lw=1, label="1/D interpolated")
    ax.axhspan(ref["D_1e-5_cm2_s"] - ref["error_1e-5_cm2_s"], ref["D_1e-5_cm2_s"] + ref["error_1e-5_cm2_s"], color="k",
               alpha=0.2, label="reference ± error")
    ax.axhline(result["before"]["D_1e-5_cm2_s"], color="C3", ls="--", lw=1, label="default Langevin 1/ps")
    ax.axvline(result["fitted_scale_per_ps"], color="C2", lw=1, label="fitted")
    ax.set(xlabel="friction scale γ (1/ps)", ylabel="D (10⁻⁵ cm²/s)", yscale="log")
    ax.legend(fontsize=7)
    save_figure(fig, out / "d_gamma.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, r, colour in (("default Langevin 1/ps", result["before"], "C3"), ("fitted", result["after"], "C2")):
        ax.plot(np.array(r["vacf_lag_fs"]) * FS_TO_PS, r["vacf"], color=colour, label=label)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set(xlabel="lag (ps)", ylabel="molecular VACF, normalised")
    ax.legend(fontsize=7)
    save_figure(fig, out / "vacf.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, r, style in (("reference", ref, {"color": "k", "lw": 2}), ("default Langevin 1/ps", result["before"],
                            {"color": "C3"}), ("fitted", result["after"], {"color": "C2"})):
        ax.loglog(np.array(r["msd_lag_fs"]) * FS_TO_PS, r["msd_a2"], label=label, **style)
    ax.axvspan(*result["window_ps"], color="grey", alpha=0.15, label="fit window")
    ax.set(xlabel="lag (ps)", ylabel="molecular COM MSD (Å²)")
    ax.legend(fontsize=7)
    save_figure(fig, out / "msd.png")
    plt.close(fig)
