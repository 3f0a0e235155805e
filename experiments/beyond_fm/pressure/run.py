"""Pressure-consistent priors on SPC/E water (1-bead COM) and TraPPE-UA hexane (3-bead COM).

For each system, priors fitted on the same training frames: plain force matching (``fm``), with the
Das–Andersen virial constraint (``virial``), with the first-order pressure ramp (``ramp``), that
ramp refined on NVT MD (``ramp_md``, ``cgzoo refine-pressure``) and a ramp refined on top of the
virial-constrained prior (``virial_md``). Each is run with LAMMPS at the
reference temperature: NVT in the reference box (pressure ± block standard error, g(r) error vs the
reference's test frames) and NPT with the MTK barostat at the reference pressure (density vs the
generate run's density.json). g(r) noise floor: the reference's first vs second half of frames.

    PYTHONPATH=. python experiments/beyond_fm/pressure/run.py [--data $CGZOO_BEYOND_FM_DATA/press]

Stages skip outputs that exist, so a rerun resumes; results.json/results.md/gr_*.png go next to this file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from cgzoo.data.dataset import load_topology
from cgzoo.data.splits import block_split
from cgzoo.generate.density import block_average
from cgzoo.observables.compare import mean_finite, rms_difference
from cgzoo.observables.structure import rdf
from cgzoo.observables.trajectory import CGTrajectory, read_log

#: where the experiment's atomistic runs and derived data live (not in the repository)
DATA_ROOT = Path(os.environ.get("CGZOO_BEYOND_FM_DATA", "runs/beyond_fm"))

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
ATOM = DATA_ROOT / "atom"
SYSTEMS = {"water": ("spce-water", "water.h5", "fm_pair.yaml"), "hexane": ("hexane-ua", "hexane3.h5", "fm_full.yaml")}
VARIANTS = ("fm", "virial", "ramp", "ramp_md", "virial_md")
#: MD lengths (steps of 2 fs): NVT 30 ps (first 6 ps dropped), NPT 60 ps (first 10 ps dropped)
TIMESTEP_FS, NVT_STEPS, NVT_EQUIL, NPT_STEPS, NPT_EQUIL, SAVE = 2.0, 15_000, 3_000, 30_000, 5_000, 50
#: refine-pressure: iterations of 20 ps NVT (first 4 ps dropped)
REFINE = ["--iterations", "4", "--steps", "10000", "--equilibration-steps", "2000", "--tolerance", "100"]
MAX_FRAMES = 400
R_MAX, BINS = 9.0, 90


def cgzoo(*args: str, log: Path) -> None:
    """Run one cgzoo command (one thread, niced), its output appended to ``log``; a failure stops the experiment."""
    cmd = ["nice", "-n", "10", sys.executable, "-m", "cgzoo", *args]
    with log.open("a") as fh:
        fh.write("$ cgzoo " + " ".join(args) + "\n")
        fh.flush()
        subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})


def specs(base: Path, out: Path, target_bar: float) -> dict[str, Path]:
    """The base spec thinned to MAX_FRAMES, and its virial and ramp variants."""
    spec = yaml.safe_load(base.read_text())
    spec["max_frames"] = MAX_FRAMES
    paths = {}
    for name, pressure in (("fm", None), ("virial", "virial"), ("ramp", "ramp")):
        s = dict(spec, **({"pressure": {"target_bar": target_bar, "method": pressure}} if pressure else {}))
        paths[name] = out / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(s))
    return paths


def pressure_of(run: Path, equil_steps: int) -> dict[str, float]:
    """Mean logged pressure and density after ``equil_steps``, with block-averaged standard errors."""
    log = read_log(run / "log.csv")
    keep = log["step"] >= equil_steps
    p, d = block_average(log["pressure_bar"][keep]), block_average(log["density_g_cm3"][keep])
    return {"pressure_bar": p.mean, "pressure_sem_bar": p.sem, "density_g_cm3": d.mean, "density_sem_g_cm3": d.sem,
            "samples": int(keep.sum())}


def gr(traj: CGTrajectory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return rdf(traj, R_MAX, BINS, intermolecular=True)


def gr_error(ref: dict, model: dict) -> float | None:
    """RMS g(r) difference averaged over the type pairs both have."""
    return mean_finite(rms_difference(ref[k][1], model[k][1]) for k in ref if k in model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT / "press")
    parser.add_argument("--systems", nargs="*", default=list(SYSTEMS))
    args = parser.parse_args()
    results: dict = {}
    for system in args.systems:
        atom, h5, base = SYSTEMS[system]
        data, work = args.data / h5, args.data / system
        work.mkdir(parents=True, exist_ok=True)
        log = work / "commands.log"
        reference = json.loads((ATOM / atom / "density.json").read_text())
        target = float(reference["pressure_bar"])
        spec_paths = specs(REPO / "datasets" / "priors" / base, work, target)
        for name, spec in spec_paths.items():
            if not (work / name / "prior.json").exists():
                cgzoo("fit-prior", "--data", str(data), "--prior", str(spec), "--out", str(work / name), "--no-plots",
                      "--quiet", log=log)
        for refined in ("ramp", "virial"):
            if not (work / f"{refined}_md" / "prior.json").exists():
                cgzoo("refine-pressure", "--prior", str(work / refined), "--data", str(data), "--out",
                      str(work / f"{refined}_md"), "--target-bar", str(target), *REFINE, log=log)
        test = block_split(load_topology(data)[2], (0.8, 0.1, 0.1), n_blocks=10, gap=2, seed=0)["test"]
        ref_traj = CGTrajectory.from_dataset(data)
        ref_gr = gr(ref_traj.select(test))
        half = ref_traj.n_frames // 2
        noise = gr_error(gr(ref_traj.select(np.arange(0, half, 5))), gr(ref_traj.select(np.arange(half, 2 * half, 5))))
        row = {"target_bar": target, "reference_density_g_cm3": reference["density_g_cm3"]["mean"],
               "reference_density_sem_g_cm3": reference["density_g_cm3"]["sem"], "gr_noise_rms": noise,
               "variants": {}}
        curves = {"reference": ref_gr}
        for variant in VARIANTS:
            prior = work / variant
            runs = {"nvt": ("nvt", NVT_STEPS, NVT_EQUIL), "npt": ("npt", NPT_STEPS, NPT_EQUIL)}
            out: dict = {"prior_report": _prior_summary(prior)}
            for ens, (ensemble, steps, equil) in runs.items():
                run = work / f"{variant}_{ens}"
                if not (run / "run.json").exists() or json.loads((run / "run.json").read_text())["status"] != "complete":
                    cgzoo("simulate", "--model", str(prior), "--start", f"{data}@{int(test[0])}", "--out", str(run),
                          "--ensemble", ensemble, "--steps", str(steps), "--timestep-fs", str(TIMESTEP_FS),
                          "--save-every", str(SAVE), "--engine", "lammps", "--barostat", "mtk",
                          "--threads", "1", "--quiet", "--overwrite", log=log)
                out[ens] = pressure_of(run, equil)
                if ens == "nvt":
                    traj = CGTrajectory.from_run(run)
                    keep = np.flatnonzero(traj.times >= equil * TIMESTEP_FS)
                    curves[variant] = gr(traj.select(keep))
                    out["gr_rms_error"] = gr_error(ref_gr, curves[variant])
            out["npt"]["density_rel_error"] = out["npt"]["density_g_cm3"] / row["reference_density_g_cm3"] - 1.0
            row["variants"][variant] = out
            print(system, variant, json.dumps({k: v for k, v in out.items() if k != "prior_report"}), flush=True)
        _plot(system, curves)
        # re-read: another system may have been run by a parallel process meanwhile
        results = json.loads((HERE / "results.json").read_text()) if (HERE / "results.json").exists() else {}
        results[system] = row
        (HERE / "results.json").write_text(json.dumps(results, indent=1))
    _markdown(results)


def _plot(system: str, curves: dict[str, dict]) -> None:
    """g(r) of every prior's NVT run against the reference, one panel per type pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cgzoo.outputs import save_figure

    keys = list(curves["reference"])
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, gr_of in curves.items():
            if key in gr_of:
                r, g = gr_of[key]
                ax.plot(r, g, "k--" if name == "reference" else "-", lw=1.2, label=name)
        ax.set(xlabel="r (Å)", ylabel="g(r)", title=f"{system} {key} (NVT, reference box)")
    axes[0][0].legend(fontsize=8)
    save_figure(fig, HERE / f"gr_{system}.png")
    plt.close(fig)


def _prior_summary(prior: Path) -> dict:
    """Pressure figures a prior's report holds: the constraint's, the ramp's or the refinement's."""
    report = json.loads((prior / "report.json").read_text())
    if report.get("method") == "refine_pressure":
        chosen = report["iterations"][report["chosen"]]
        return {"amplitude": chosen["amplitude"], "iterations": report["iterations"], "converged": report["converged"]}
    summary = {"test_force_rmse": report["errors"]["test"]["force_rmse"]}
    for term in report["terms"]:
        if "virial_constraint" in term:
            summary.update(term["virial_constraint"])
        if term["method"] == "pressure_ramp":
            summary.update(amplitude=term["amplitude"], train_pressure_before_bar=term["train_pressure_before_bar"])
    return summary


def _markdown(results: dict) -> None:
    lines = ["# Pressure-consistent priors: results", "",
             f"LAMMPS, 298.15 K, Langevin 1/ps, {TIMESTEP_FS:g} fs; NVT {NVT_STEPS * TIMESTEP_FS / 1000:g} ps in the reference "
             f"box (first {NVT_EQUIL * TIMESTEP_FS / 1000:g} ps dropped), NPT MTK {NPT_STEPS * TIMESTEP_FS / 1000:g} ps "
             f"(first {NPT_EQUIL * TIMESTEP_FS / 1000:g} ps dropped); ± block-averaged standard errors. "
             f"g(r): RMS difference to the reference test frames, intermolecular pairs, 0–{R_MAX:g} Å.", ""]
    for system, row in results.items():
        lines += [f"## {system} (target {row['target_bar']:.2f} bar, reference density "
                  f"{row['reference_density_g_cm3']:.4f} ± {row['reference_density_sem_g_cm3']:.4f} g/cm³, "
                  f"g(r) noise {row['gr_noise_rms']:.4f})", "",
                  "| prior | NVT P (bar) | NPT density (g/cm³) | Δρ/ρ | g(r) RMS error | test force RMSE |",
                  "|---|---|---|---|---|---|"]
        for variant, v in row["variants"].items():
            rmse = v["prior_report"].get("test_force_rmse")
            lines.append(f"| {variant} | {v['nvt']['pressure_bar']:.0f} ± {v['nvt']['pressure_sem_bar']:.0f} | "
                         f"{v['npt']['density_g_cm3']:.4f} ± {v['npt']['density_sem_g_cm3']:.4f} | "
                         f"{100 * v['npt']['density_rel_error']:+.1f} % | {v['gr_rms_error']:.4f} | "
                         f"{'' if rmse is None else f'{rmse:.4f}'} |")
        lines.append("")
    (HERE / "results.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
