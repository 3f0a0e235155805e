"""MD throughput of every architecture through the ASE driver, the driver's overhead, and the atomistic OpenMM run.

CG system: the default dataset's first frame (300 CG SPC/E beads, 20.8 Å box), NVT Langevin at
2 fs through ``cgzoo.md.simulate`` (the same code ``cgzoo simulate`` runs), with a
force-matched pair prior (cutoff 9 Å, fitted on 20 training frames) under every network at its
zoo defaults (Δ mode; untrained weights cost the same as trained ones). Model time is the time
spent inside ``CGCalculator.calculate``; the rest of the wall time is driver overhead (ASE
integrator, guard, neighbour-list bookkeeping, trajectory and log writing every 50 steps).
Atomistic reference: the same 300 SPC/E waters in OpenMM (PME, 9 Å, LangevinMiddle at 2 fs,
CPU platform), equilibrated by ``cgzoo generate`` and timed on the same machine in the same run.
The ratio is CG ns/day ÷ atomistic ns/day at the same time step. Usage::

    python experiments/benchmarks/md_throughput.py [--steps 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cgzoo.models import NETWORKS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))  # md_engines, beside this script
DATA = ROOT / "datasets" / "default" / "spce-water_1bead_com.h5"
MODELS = ("prior_only", *NETWORKS)  # the prior alone, then every registered architecture


def cg_throughput(name: str, steps: int, workdir: Path) -> dict:
    """ns/day and driver-overhead share of one CG model in NVT through the ASE driver."""
    from md_engines import zoo_network_args

    from cgzoo.fitting.spec import fit_prior
    from cgzoo.md import SimulationSettings, simulate
    from cgzoo.md.calculator import CGCalculator
    from cgzoo.models import CGModel, build_network

    prior, _ = fit_prior(DATA, {"max_frames": 20, "terms": [{"fit": "force_matching", "cutoff": 9.0}]}, progress=lambda m: None)
    net = None
    if name != "prior_only":
        net = build_network(name, ["W"], **zoo_network_args(name))
    model = CGModel(prior, net, mode="prior_only" if net is None else "delta", energy_scale=1.0)
    spent = [0.0]
    original = CGCalculator.calculate

    def timed(self, *a, **k):
        t0 = time.perf_counter()
        original(self, *a, **k)
        spent[0] += time.perf_counter() - t0

    CGCalculator.calculate = timed
    try:
        settings = SimulationSettings(ensemble="nvt", timestep_fs=2.0, steps=steps, save_every=50, engine="ase")
        t0 = time.perf_counter()
        simulate(model, f"{DATA}@0", workdir / name, settings, progress=False, overwrite=True)
        wall = time.perf_counter() - t0
    finally:
        CGCalculator.calculate = original
    return {"model": name, "steps": steps, "wall_s": wall, "model_s": spent[0], "overhead_share": 1 - spent[0] / wall,
            "steps_per_s": steps / wall, "ns_per_day": steps * 2.0e-6 / (wall / 86400)}


def atomistic_throughput(steps: int, threads: int, workdir: Path) -> dict:
    """ns/day of the 300-water SPC/E box in OpenMM, from a state equilibrated by ``cgzoo generate``."""
    from md_engines import atomistic_speed

    run = workdir / "atomistic"
    subprocess.run([sys.executable, "-m", "cgzoo", "generate", "spce-water", "--out", str(run), "--n-molecules", "300",
                    "--equil-ps", "5", "--prod-ps", "1", "--save-every-fs", "500", "--quiet", "--overwrite"], check=True)
    speed = atomistic_speed("spce-water", run, 300, threads, steps)
    return {"model": "OpenMM atomistic SPC/E (900 atoms, PME)", "steps": steps,
            "steps_per_s": 1e3 / speed["ms_per_step"], "ns_per_day": speed["ns_per_day"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--atomistic-steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    import torch

    from cgzoo.runtime import tune_allocator

    tune_allocator()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = [cg_throughput(name, args.steps, work) for name in args.models]
        for r in rows:
            print(r, flush=True)
        atom = atomistic_throughput(args.atomistic_steps, args.threads, work)
        print(atom, flush=True)
    stamp = dt.date.today().isoformat()
    machine = f"{platform.machine()} CPU, {args.threads} thread(s), Python {platform.python_version()}"
    (HERE / "md_throughput.json").write_text(json.dumps({"date": stamp, "machine": machine, "cg": rows, "atomistic": atom},
                                                       indent=1))
    lines = [f"\n## MD throughput through the ASE driver ({stamp})\n",
             f"Machine: {machine}; command: `python experiments/benchmarks/md_throughput.py --steps {args.steps} "
             f"--threads {args.threads}`. CG SPC/E water, 300 beads, NVT Langevin 2 fs, Δ models on a force-matched "
             "prior; atomistic: the same 300 waters (900 atoms) in OpenMM, same machine, same run.\n",
             "| model | steps/s | ns/day | driver overhead | CG ÷ atomistic speed (per simulated ns) |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['steps_per_s']:.2f} | {r['ns_per_day']:.3f} | {100 * r['overhead_share']:.1f} % | "
                     f"{r['ns_per_day'] / atom['ns_per_day']:.3f}× |")
    lines.append(f"| {atom['model']} | {atom['steps_per_s']:.2f} | {atom['ns_per_day']:.3f} | — | 1 |")
    with (HERE / "RESULTS.md").open("a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
