"""Issue 13 item 4: fitted friction for SPC/E water (1 bead) and TraPPE-UA hexane (3 beads), Langevin and DPD.

For each system: map the atomistic run, force-match the prior, then ``cgzoo fit-friction`` per kind, and
collect the reference D, the CG D at the default friction (global Langevin 1/ps) and with the fitted
friction, the fitted γ, and the figures, into ``results.json``, ``results.md`` and ``<system>_<kind>_*.png``
here. Derived data go to $CGZOO_BEYOND_FM_DATA/fric/. A step whose output exists is not redone, so a rerun only
collects. Run from the repository root: ``python experiments/beyond_fm/friction/run.py [--collect-only]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: where the experiment's atomistic runs and derived data live (not in the repository)
DATA_ROOT = Path(os.environ.get("CGZOO_BEYOND_FM_DATA", "runs/beyond_fm"))

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
DATA = DATA_ROOT
WORK = DATA / "fric"
#: system → mapping, prior spec, and per friction kind the fit-friction options (grids bracket the fitted γ; the
#: DPD runs are ASE-only, hence shorter: same window check, smaller window)
SYSTEMS = {
    "spce-water": {"short": "water", "mapping": "spce-water_1bead_com", "prior": "fm_pair", "fits": {
        "langevin": ["--gammas", "10", "40"],
        "dpd": ["--dpd-cutoff", "6.0", "--gammas", "100", "250", "--run-ps", "10", "--equil-ps", "1",
                "--window-ps", "2", "5", "--engine", "ase"]}},
    "hexane-ua": {"short": "hexane", "mapping": "hexane-ua_3bead_com", "prior": "fm_full", "fits": {
        "langevin": ["--gammas", "3", "10"],
        "dpd": ["--dpd-cutoff", "6.0", "--gammas", "3", "10", "30", "--run-ps", "12", "--equil-ps", "2",
                "--window-ps", "2", "6", "--engine", "ase"]}},
}


def cgzoo(*args: str) -> None:
    """Run one ``cgzoo`` command of this tree, single-threaded."""
    subprocess.run([sys.executable, "-m", "cgzoo", *args], check=True, cwd=ROOT,
                   env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent)})


def prepare(system: str, spec: dict) -> tuple[Path, Path]:
    """The mapped dataset and the fitted prior of ``system`` (made if missing)."""
    short = spec["short"]
    data, prior = WORK / f"{short}.h5", WORK / f"{short}_prior"
    if not data.exists():
        cgzoo("map", "--top", str(DATA / "atom" / system), "--mapping", f"datasets/mappings/{spec['mapping']}.yaml",
              "--out", str(data), "--quiet")
    if not (prior / "prior.json").exists():
        cgzoo("fit-prior", "--data", str(data), "--prior", f"datasets/priors/{spec['prior']}.yaml", "--out", str(prior),
              "--no-plots", "--quiet")
    return data, prior


def main(collect_only: bool) -> None:
    """Run what is missing (unless ``collect_only``: then only the finished fits are collected) and write the results."""
    results = {}
    for system, spec in SYSTEMS.items():
        data, prior = (WORK / f"{spec['short']}.h5", WORK / f"{spec['short']}_prior") if collect_only \
            else prepare(system, spec)
        for kind, options in spec["fits"].items():
            out = WORK / f"{spec['short']}_{kind}"
            if collect_only and not (out / "fit.json").exists():
                continue
            if not (out / "fit.json").exists():
                cgzoo("fit-friction", "--model", str(prior), "--data", str(data), "--out", str(out), "--kind", kind,
                      "--threads", "1", "--quiet", *options)
            fit = json.loads((out / "fit.json").read_text())
            results[f"{system}/{kind}"] = {
                "command": f"cgzoo fit-friction --model {prior} --data {data} --out {out} --kind {kind} " + " ".join(options),
                "window_ps": fit["window_ps"], "reference_loglog_slope": fit["reference"]["loglog_slope"],
                "D_ref": [fit["reference"]["D_1e-5_cm2_s"], fit["reference"]["error_1e-5_cm2_s"]],
                "D_default": [fit["before"]["D_1e-5_cm2_s"], fit["before"]["error_1e-5_cm2_s"]],
                "D_fitted": [fit["after"]["D_1e-5_cm2_s"], fit["after"]["error_1e-5_cm2_s"]],
                "gamma_fitted_per_ps": fit["fitted_scale_per_ps"],
                "grid": [[g["scale_per_ps"], g["D_1e-5_cm2_s"]] for g in fit["grid"]],
                "engine": fit["after"]["engine"]}
            for plot in ("d_gamma", "msd", "vacf"):
                shutil.copyfile(out / f"{plot}.png", HERE / f"{system}_{kind}_{plot}.png")
            shutil.copyfile(out / "report.md", HERE / f"{system}_{kind}_report.md")
    (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["| system / friction | D_ref | D default (1/ps) | × ref | fitted γ (1/ps) | D fitted | × ref |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ref = r["D_ref"][0]
        lines.append(f"| {name} | {ref:.2f} ± {r['D_ref'][1]:.2f} | {r['D_default'][0]:.2f} ± {r['D_default'][1]:.2f} | "
                     f"{r['D_default'][0] / ref:.2f} | {r['gamma_fitted_per_ps']:.3g} | "
                     f"{r['D_fitted'][0]:.2f} ± {r['D_fitted'][1]:.2f} | {r['D_fitted'][0] / ref:.2f} |")
    (HERE / "results.md").write_text("D in 10⁻⁵ cm²/s (molecular centre of mass).\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(collect_only="--collect-only" in sys.argv[1:])
