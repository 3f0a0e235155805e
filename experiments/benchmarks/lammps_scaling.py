"""Time per step of exported LAMMPS models on 10⁴–10⁶ beads, on MPI ranks and on OpenMP threads.

The water 1-bead prior (force-matched on the shipped default dataset with
``datasets/priors/fm_pair.yaml``, 9 Å cutoff; 300 beads) and, given a 3-bead hexane dataset
(``--hexane``, e.g. ``cgzoo generate hexane-ua`` mapped with ``hexane-ua_3bead_com``), the hexane
prior (``fm_full.yaml``: pairs, bonds, angles) are exported as ``cgzoo export --engine lammps``
writes them, on the dataset's first frame; LAMMPS replicates that box (``replicate n n n`` after
``read_data``: no large data file is written) to about 10⁴, 10⁵ and 10⁶ beads and runs the exported
NVT (Langevin) script, without its trajectory dump, at the system's LAMMPS time step from the
NVE drift scans in RESULTS.md ("CG MD engines against the atomistic run": water 6 fs, hexane 2 fs).
Each size runs on 1 rank, on each of ``--ranks`` MPI ranks with 1 OpenMP thread, and on 1 rank with
each of ``--threads`` OpenMP threads (``-sf omp -pk omp T``). Recorded from LAMMPS' log
(:mod:`cgzoo.engines.lammps_log`): loop time, ms/step, µs per bead-step, parallel efficiency
(1-rank loop time ÷ (cores × loop time)), memory per rank, the share of the loop spent in
communication, and the load average when each run started. Steps are chosen for about
``--seconds`` of loop time on 1 thread, from the 1-thread cost per bead-step in RESULTS.md.

Results go to ``lammps_scaling.json`` and a table appended to ``RESULTS.md`` (``--quick``: small
sizes and short runs, printed only). Usage::

    python experiments/benchmarks/lammps_scaling.py [--quick] [--systems water hexane --hexane DATASET.h5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT = ROOT / "datasets" / "default" / "spce-water_1bead_com.h5"
#: per system: prior spec, LAMMPS time step (fs), 1-thread LAMMPS cost (µs per bead-step) of RESULTS.md's engine runs
SYSTEMS = {"water": {"prior": "fm_pair.yaml", "timestep_fs": 6.0, "us_per_bead_step": 1.06},
           "hexane": {"prior": "fm_full.yaml", "timestep_fs": 2.0, "us_per_bead_step": 0.354e3 / 900}}
TARGETS = (1e4, 1e5, 1e6)
QUICK_TARGETS = (1e3, 1e4)


def prior_export(system: str, data: Path, work: Path, quick: bool) -> Path:
    """The prior of ``system`` force-matched on ``data`` and exported for LAMMPS (``export_model``) on its first frame;
    the export directory."""
    import yaml

    from cgzoo.fitting.spec import fit_prior
    from cgzoo.md import SimulationSettings
    from cgzoo.md.export import export_model
    from cgzoo.models import CGModel

    opts = SYSTEMS[system]
    spec = yaml.safe_load((ROOT / "datasets" / "priors" / opts["prior"]).read_text())
    if quick:
        spec["max_frames"] = 20
    prior, _ = fit_prior(data, spec, progress=lambda m: None)
    out = work / system
    export_model(CGModel(prior, None, mode="prior_only"), f"{data}@0", "lammps", out,
                 SimulationSettings(ensemble="nvt", timestep_fs=opts["timestep_fs"], steps=1, save_every=1), frames=1)
    return out


def replicated_script(export_dir: Path, n: int, steps: int) -> str:
    """The exported ``in.lammps`` with the box replicated n × n × n after ``read_data``, ``steps`` steps, thermo at
    the ends, no dump; written beside it, returns its name."""
    text = (export_dir / "in.lammps").read_text()
    text = text.replace("read_data system.data\n", f"read_data system.data\nreplicate {n} {n} {n}\n")
    text = re.sub(r"^dump.*\n", "", text, flags=re.MULTILINE)
    text = re.sub(r"^thermo \d+$", f"thermo {steps}", text, flags=re.MULTILINE)
    text = re.sub(r"^run \d+$", f"run {steps}", text, flags=re.MULTILINE)
    name = f"in.x{n}_{steps}"
    (export_dir / name).write_text(text)
    return name


def run(export_dir: Path, script: str, ranks: int, threads: int, timestep_fs: float) -> dict:
    """One LAMMPS run of ``script`` on ``ranks`` × ``threads``: the figures of its log."""
    from cgzoo.engines.lammps import mpi_command
    from cgzoo.engines.lammps_log import read_log

    argv, env = mpi_command(ranks, threads, script)
    log_name = f"log.{script}_{ranks}x{threads}"
    load = os.getloadavg()[0]
    subprocess.run([*argv, "-log", log_name, "-screen", "none"], cwd=export_dir, env=env, check=True)
    log = read_log(export_dir / log_name)
    if log.steps is None or log.loop_time_s is None:
        raise RuntimeError(f"{export_dir / log_name}: LAMMPS reported no loop time")
    ms = 1e3 * log.loop_time_s / log.steps
    return {"beads": log.atoms, "ranks": ranks, "threads": threads, "grid": list(log.grid), "steps": log.steps,
            "loop_time_s": log.loop_time_s, "ms_per_step": ms, "us_per_bead_step": 1e3 * ms / log.atoms,
            "ns_per_day": log.steps * timestep_fs * 1e-6 / (log.loop_time_s / 86400),
            "memory_mb_per_rank_max": log.memory_mb[2] if log.memory_mb else None,
            "comm_percent": log.sections.get("Comm", (None, None))[1], "cpu_use_percent": log.cpu_use_percent,
            "load_average_at_start": load}


def machine() -> dict:
    """CPU model and core count (lscpu), and the load average now."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    info = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    return {"cpu": info.get("Model name", "?").strip(), "cpus": os.cpu_count(), "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs (a smoke test, not figures)")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=["water"])
    parser.add_argument("--hexane", type=Path, help="3-bead hexane CG dataset (HDF5) for --systems hexane")
    parser.add_argument("--ranks", type=int, nargs="+", default=[2], help="MPI rank counts beside 1 (1 thread each)")
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="OpenMP thread counts on 1 rank")
    parser.add_argument("--seconds", type=float, default=15.0, help="loop time a run is sized for (on 1 thread)")
    args = parser.parse_args()
    if "hexane" in args.systems and args.hexane is None:
        parser.error("--systems hexane needs --hexane DATASET.h5")
    datasets = {"water": DEFAULT, "hexane": args.hexane}
    configs = [(1, 1)] + [(r, 1) for r in args.ranks if r > 1] + [(1, t) for t in args.threads if t > 1]
    seconds = 1.0 if args.quick else args.seconds
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="minutes"), "machine": machine(),
               "command": " ".join(["python experiments/benchmarks/lammps_scaling.py", *sys.argv[1:]]), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for system in args.systems:
            opts = SYSTEMS[system]
            export_dir = prior_export(system, datasets[system], Path(tmp), args.quick)
            base = int(re.search(r"^(\d+) atoms$", (export_dir / "system.data").read_text(), re.MULTILINE)[1])
            for target in QUICK_TARGETS if args.quick else TARGETS:
                n = max(1, round((target / base) ** (1 / 3)))
                steps = max(10, round(seconds / (opts["us_per_bead_step"] * 1e-6 * base * n**3)))
                script = replicated_script(export_dir, n, steps)
                single = None
                for ranks, threads in configs:
                    row = {"system": system, "dataset": str(datasets[system]), "timestep_fs": opts["timestep_fs"],
                           **run(export_dir, script, ranks, threads, opts["timestep_fs"])}
                    single = single or row["loop_time_s"]
                    row["parallel_efficiency"] = single / (ranks * threads * row["loop_time_s"])
                    results["rows"].append(row)
                    print(json.dumps(row), flush=True)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    if args.quick:  # a smoke test of the script: its numbers are not figures
        return
    (HERE / "lammps_scaling.json").write_text(json.dumps(results, indent=1))
    write_results(results)


def write_results(results: dict) -> None:
    """Append the run's table to RESULTS.md (the reading below it is written by hand)."""
    m = results["machine"]
    systems = ", ".join(dict.fromkeys(r["system"] for r in results["rows"]))
    intro = (f"Machine: {m['cpu']}, {m['cpus']} cores; load average (1 min) {m['load_average'][0]:.2f} at the start "
             f"and {m['load_average_at_end'][0]:.2f} at the end; command: `{results['command']}`. Priors force-matched "
             "(water: fm_pair.yaml on the default dataset; hexane: fm_full.yaml; 9 Å), NVT Langevin, the dataset's "
             "first frame replicated inside LAMMPS. Efficiency: 1-rank loop time ÷ (cores × loop time); memory: "
             "LAMMPS' largest \"Per MPI rank memory allocation\"; comm: the share of the loop in communication.\n")
    header = ("| system | beads | ranks × threads | dt (fs) | steps | loop (s) | ms/step | µs per bead-step | "
              "efficiency | ns/day | memory per rank (MB) | comm % | load at start |")
    lines = [f"\n## LAMMPS on MPI ranks and OpenMP threads, 10⁴–10⁶ beads: {systems} ({results['date'][:10]})\n",
             intro, header, "|---" * 13 + "|"]
    for r in results["rows"]:
        cells = [r["system"], r["beads"], f"{r['ranks']} × {r['threads']}", f"{r['timestep_fs']:g}", r["steps"],
                 f"{r['loop_time_s']:.1f}", f"{r['ms_per_step']:.3g}", f"{r['us_per_bead_step']:.3g}",
                 f"{r['parallel_efficiency']:.2f}", f"{r['ns_per_day']:.3g}", f"{r['memory_mb_per_rank_max']:.4g}",
                 f"{r['comm_percent']:.1f}", f"{r['load_average_at_start']:.2f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    with (HERE / "RESULTS.md").open("a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
