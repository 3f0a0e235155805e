"""Refine a prior's pressure ramp until the model's own NVT pressure at the reference density is the target.

The ramp amplitude chosen in fitting (:func:`cgzoo.fitting.pressure.ramp_amplitude`) makes the
pressure right on the *reference* configurations; the prior's own ensemble has another structure
and so another pressure. Each iteration runs NVT MD of prior + ramp A_k from a dataset frame (the
reference box), averages the logged virial pressure (kinetic term included) after an equilibration
part with a block-averaged standard error, and updates A by a Newton step on P(A): the first step
uses the first-order slope dP/dA = ⟨P_ramp(A = 1)⟩ on the reference frames, later ones the secant
through the last two iterations (while it has the sign of the first-order slope). It stops when
|P − target| is within ``tolerance_bar`` or twice the standard error. The output is a prior
directory like ``cgzoo fit-prior``'s: ``prior.json`` (the iteration closest to the target), its
tables if asked, ``report.json``/``report.md`` with every iteration, and each iteration's
``log.csv`` under ``iterations/``; the MD trajectories are not kept.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgzoo.data.dataset import load_topology
from cgzoo.errors import InputError
from cgzoo.fitting.pressure import frame_pressures_bar
from cgzoo.fitting.spec import FrameStream, term_keys
from cgzoo.generate.density import block_average
from cgzoo.md.settings import SimulationSettings
from cgzoo.md.simulate import simulate
from cgzoo.observables.trajectory import read_log
from cgzoo.priors import Prior, SumPrior, build_prior, load_prior, save_prior
from cgzoo.priors.export import members
from cgzoo.priors.ramp import PressureRamp
from cgzoo.priors.tabulated import Tabulated
from cgzoo.priors.terms import PairPrior

#: reference frames the first-order slope dP/dA is averaged over
SLOPE_FRAMES = 20


@dataclass
class RefineSettings:
    """The NVT runs of each iteration and when to stop (times in steps of ``timestep_fs``)."""

    target_bar: float
    iterations: int = 6
    steps: int = 10_000
    equilibration_steps: int = 2_000
    timestep_fs: float = 2.0
    save_every: int = 50
    tolerance_bar: float = 50.0
    engine: str = "lammps"
    threads: int = 1
    start_frame: int = 0
    cutoff: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.steps < 1 or self.save_every < 1 or self.tolerance_bar <= 0:
            raise InputError(None, "refine-pressure: --iterations, --steps, --save-every and --tolerance must be positive")
        if not 0 <= self.equilibration_steps < self.steps:
            raise InputError(None, f"refine-pressure: --equilibration-steps must lie in [0, --steps = {self.steps})")
        if not math.isfinite(self.target_bar):
            raise InputError(None, "refine-pressure: --target-bar must be a finite pressure")


@dataclass
class Iteration:
    """One NVT run: its ramp amplitude (kcal/mol) and the mean pressure (bar) with its standard error."""

    amplitude: float
    pressure_bar: float
    sem_bar: float
    frames: int


def split_ramp(prior: Prior, cutoff: float | None) -> tuple[list[Prior], PressureRamp]:
    """The prior's members other than its pressure ramp, and the ramp (amplitude 0 on every pair if it has none).

    A new ramp spans ``cutoff`` (default: the largest pair cutoff) with the exclusions of the first pair term.
    """
    parts = members(prior)
    ramps = [p for p in parts if isinstance(p, PressureRamp)]
    rest = [p for p in parts if not isinstance(p, PressureRamp)]
    if len(ramps) > 1:
        raise ValueError("the prior has more than one pressure ramp")
    if ramps:
        return rest, ramps[0]
    pairs = [p for p in rest if isinstance(p, PairPrior) or (isinstance(p, Tabulated) and p.kind == "pair")]
    if not pairs:
        raise ValueError("the prior has no pair term, so a pressure ramp would have no exclusions or range to follow")
    r_c = float(cutoff or max(p.cutoff for p in pairs))
    ramp = build_prior({"class_path": "pressure_ramp", "init_args": {
        "params": {}, "default": {"amplitude": 0.0}, "cutoff": r_c, "exclude": pairs[0].exclude,
        "intramolecular": pairs[0].intramolecular}}, prior.type_names)
    return rest, ramp


def uniform_amplitude(ramp: PressureRamp) -> float:
    """The ramp's one amplitude (kcal/mol); ``ValueError`` if its pairs have different ones."""
    values = ramp.table.values.detach()[..., 0][ramp.table.defined]
    if not len(values):
        return 0.0
    if not bool(torch.all(values == values[0])):
        raise ValueError("the prior's pressure ramp has different amplitudes per pair; refinement keeps one for all")
    return float(values[0])


def with_amplitude(ramp: PressureRamp, amplitude: float) -> PressureRamp:
    """A copy of ``ramp`` with one ``amplitude`` on every pair."""
    config = {**ramp.config(), "params": {}, "default": {"amplitude": float(amplitude)}}
    return PressureRamp(**config)


def next_amplitude(history: list[Iteration], target_bar: float, first_order_slope: float) -> float:
    """Newton step on P(A): the secant through the last two iterations, or the first-order slope (see module docstring)."""
    slope = first_order_slope
    if len(history) >= 2:
        a, b = history[-2], history[-1]
        if b.amplitude != a.amplitude:
            secant = (b.pressure_bar - a.pressure_bar) / (b.amplitude - a.amplitude)
            if secant * first_order_slope > 0:
                slope = secant
    last = history[-1]
    return last.amplitude + (target_bar - last.pressure_bar) / slope


def nvt_pressure(prior_path: Path, start: str, run_dir: Path, temperature: float, s: RefineSettings,
                 iteration: int) -> tuple[float, float, int]:
    """Mean logged pressure (bar), its block-averaged standard error and the frames averaged, of an NVT run of ``prior_path``."""
    settings = SimulationSettings(ensemble="nvt", temperature_K=temperature, timestep_fs=s.timestep_fs, steps=s.steps,
                                  save_every=s.save_every, engine=s.engine, seed=s.seed + iteration)
    simulate(prior_path, start, run_dir, settings, progress=False, threads=s.threads)
    log = read_log(run_dir / "log.csv")
    series = log["pressure_bar"][log["step"] >= s.equilibration_steps]
    avg = block_average(series)
    return avg.mean, avg.sem, len(series)


def refine_pressure(prior: str | Path, data: str | Path, out: str | Path, settings: RefineSettings,
                    export: list[str] | None = None, overwrite: bool = False,
                    progress: Callable[[str], None] = print) -> dict[str, Any]:
    """``cgzoo refine-pressure``: iterate the ramp amplitude of ``prior`` against NVT MD at ``data``'s density; write ``out``."""
    from cgzoo.errors import check_output_path
    from cgzoo.outputs import atomic_dir, lock_path

    out = check_output_path(out, overwrite)
    s = settings
    base = load_prior(prior)
    try:
        rest, ramp = split_ramp(base, s.cutoff)
        amplitude = uniform_amplitude(ramp)
    except ValueError as exc:
        raise InputError(prior, str(exc)) from None
    topology, temperature, n_frames = load_topology(data)
    if temperature is None or not math.isfinite(temperature):
        raise InputError(data, "the dataset records no temperature, which the NVT runs need")
    if not 0 <= s.start_frame < n_frames:
        raise InputError(data, f"--start-frame {s.start_frame} is not a frame of the dataset ({n_frames} frames)")
    if list(topology.type_names) != list(base.type_names):
        raise InputError(prior, f"the prior's bead types {base.type_names} are not the dataset's {topology.type_names}")
    frames = np.linspace(0, n_frames - 1, min(SLOPE_FRAMES, n_frames)).round().astype(int)
    stream = FrameStream(Path(data), frames, ramp.cutoff)
    slope = float(frame_pressures_bar(with_amplitude(ramp, 1.0).double(), (g for g, _ in stream()), None).mean())
    if slope <= 0:
        raise InputError(data, "the pressure ramp has no pairs within its cutoff in the dataset's frames")

    history: list[Iteration] = []
    with atomic_dir(out, overwrite, marker="prior.json", what="prior directory") as tmp:
        for k in range(s.iterations):
            candidate = SumPrior([*rest, with_amplitude(ramp, amplitude)])
            step_dir = tmp / "iterations" / f"{k:02d}"
            step_dir.mkdir(parents=True)
            save_prior(candidate, step_dir / "prior.json")
            mean, sem, n = nvt_pressure(step_dir / "prior.json", f"{data}@{s.start_frame}", step_dir / "nvt",
                                        temperature, s, k)
            shutil.copy(step_dir / "nvt" / "log.csv", step_dir / "log.csv")
            shutil.rmtree(step_dir / "nvt")
            lock_path(step_dir / "nvt").unlink(missing_ok=True)
            history.append(Iteration(amplitude, mean, sem, n))
            progress(f"iteration {k}: A = {amplitude:+.5f} kcal/mol, P = {mean:.0f} ± {sem:.0f} bar (target {s.target_bar:g})")
            if abs(mean - s.target_bar) <= max(s.tolerance_bar, 2 * sem):
                break
            amplitude = next_amplitude(history, s.target_bar, slope)
        best = min(history, key=lambda it: abs(it.pressure_bar - s.target_bar))
        final = SumPrior([*rest, with_amplitude(ramp, best.amplitude)])
        report = {"method": "refine_pressure", "prior": str(prior), "dataset": str(data), "temperature": temperature,
                  "settings": asdict(s), "first_order_slope_bar_per_kcal_mol": slope,
                  "iterations": [asdict(it) for it in history], "chosen": history.index(best),
                  "converged": abs(best.pressure_bar - s.target_bar) <= max(s.tolerance_bar, 2 * best.sem_bar)}
        if export:
            keys = term_keys(FrameStream(Path(data), np.arange(0), ramp.cutoff))
            from cgzoo.priors.export import export_tables

            report["exported"] = [str(out / p.relative_to(tmp)) for p in
                                  export_tables(final, tmp / "tables", export, keys, topology.type_names, overwrite=True)]
        _write_reports(tmp, report)
        save_prior(final, tmp / "prior.json", {"report": report})
    return report


def _write_reports(tmp: Path, report: dict[str, Any]) -> None:
    """``report.json`` and a Markdown table of the iterations."""
    import json

    (tmp / "report.json").write_text(json.dumps(report, indent=1, default=str))
    s = report["settings"]
    lines = ["# Pressure refinement", "", f"prior `{report['prior']}`, dataset `{report['dataset']}`, "
             f"T = {report['temperature']} K, target {s['target_bar']:g} bar; NVT {s['steps']} steps of "
             f"{s['timestep_fs']:g} fs ({s['engine']}), first {s['equilibration_steps']} discarded", "",
             "| iteration | A (kcal/mol) | P (bar) | SE (bar) | frames |", "|---|---|---|---|---|"]
    for k, it in enumerate(report["iterations"]):
        mark = " (chosen)" if k == report["chosen"] else ""
        lines.append(f"| {k}{mark} | {it['amplitude']:+.5f} | {it['pressure_bar']:.1f} | {it['sem_bar']:.1f} | {it['frames']} |")
    lines += ["", f"converged: {report['converged']}", ""]
    (tmp / "report.md").write_text("\n".join(lines))
