"""CG MD through OpenMM, LAMMPS and ASE against the atomistic OpenMM run they replace, all in one run.

For each system (SPC/E water → 1 bead per molecule, 1000 molecules; TraPPE-UA hexane → 3 beads,
300 molecules) the script

1. generates the atomistic reference with ``cgzoo generate`` (OpenMM, CPU platform), maps it with
   the shipped COM mapping and fits the force-matched prior (``datasets/priors/fm_pair.yaml`` for
   water, ``fm_full.yaml`` for hexane) on the training split;
2. scans the time step: NVE from an NVT-equilibrated state, for each engine and dt, and takes the
   largest dt whose total-energy drift is below **0.01 k_BT per degree of freedom per ns** (linear fit
   of E_tot(t) over the run) and whose run stayed stable;
3. times every model in every engine at that time step — prior only, Δ pair_mlp (zoo defaults; an
   untrained network costs what a trained one does), Δ SchNet without and with MTS (k = 2, 4, 8),
   on 1 thread and on every core; LAMMPS also on 2 MPI ranks — and the atomistic run (PME, the
   ``generate`` force field, 2 fs, 1 thread and every core), and reports CG ÷ atomistic speed per
   simulated ns;
4. checks MTS structure: g(r) of NVT runs of Δ SchNet (300-bead default water) with k = 1 (two
   replicas: the noise) and k = 2, 4, 8;
5. times the fastest engine on replicated water boxes of 1k–32k beads.

Results go to ``md_engines.json`` and a section appended to ``RESULTS.md``. Usage::

    python experiments/benchmarks/md_engines.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT = ROOT / "datasets" / "default" / "spce-water_1bead_com.h5"
SYSTEMS = {
    "spce-water": {"mapping": "spce-water_1bead_com", "prior": "fm_pair.yaml", "n_molecules": 1000},
    "hexane-ua": {"mapping": "hexane-ua_3bead_com", "prior": "fm_full.yaml", "n_molecules": 300},
}
TIMESTEPS_FS = (2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0)
#: drift criterion: |dE_tot/dt| per degree of freedom, in k_BT per ns
DRIFT_LIMIT = 0.01
CORES = os.cpu_count() or 1


def reference_data(system: str, opts: dict, work: Path, quick: bool) -> tuple[Path, Path, dict]:
    """Atomistic run, CG dataset and fitted prior of ``system``; returns (run dir, dataset, prior spec)."""
    import yaml

    from cgzoo.data.build import build_dataset
    from cgzoo.fitting.spec import fit_prior
    from cgzoo.generate import run_generate
    from cgzoo.io import read_atomistic
    from cgzoo.mapping import CGMapper, load_mapping
    from cgzoo.priors import save_prior

    run = work / f"{system}_aa"
    run_generate(system, run, n_molecules=opts["n_molecules"], equil_ps=5.0 if quick else 20.0,
                 prod_ps=5.0 if quick else 20.0, save_every_fs=100.0 if quick else 250.0, threads=CORES, progress=False)
    source = read_atomistic(run)
    mapper = CGMapper(load_mapping(ROOT / "datasets" / "mappings" / f"{opts['mapping']}.yaml"), source.topology)
    data = build_dataset(source, mapper, work / f"{system}_cg.h5", progress=False)
    spec = yaml.safe_load((ROOT / "datasets" / "priors" / opts["prior"]).read_text())
    prior, _ = fit_prior(data, spec, progress=lambda m: None)
    save_prior(prior, work / f"{system}_prior.json")
    return run, data, work / f"{system}_prior.json"


def atomistic_speed(system: str, run: Path, n_molecules: int, threads: int, steps: int) -> dict:
    """ns/day of the atomistic reference (the ``generate`` force field, PME where it has charges, 2 fs)."""
    import openmm

    from cgzoo.generate.build import build_system, effective_cutoff
    from cgzoo.generate.registry import get_system

    state = openmm.XmlSerializer.deserialize((run / "state.xml").read_text())
    spec = get_system(system)
    box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(openmm.unit.angstrom)[0][0]
    omm = build_system(spec, n_molecules, effective_cutoff(spec, n_molecules), box)
    timestep_fs = json.loads((run / "topology.json").read_text())["options"]["timestep_fs"]
    integrator = openmm.LangevinMiddleIntegrator(298.15, 1.0, timestep_fs * 1e-3)
    context = openmm.Context(omm, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": str(threads)})
    context.setState(state)
    integrator.step(50)
    t0 = time.perf_counter()
    integrator.step(steps)
    context.getState(getEnergy=True)
    wall = time.perf_counter() - t0
    return {"atoms": omm.getNumParticles(), "threads": threads, "timestep_fs": timestep_fs, "ms_per_step": 1e3 * wall / steps,
            "ns_per_day": steps * timestep_fs * 1e-6 / (wall / 86400)}


def zoo_network_args(arch: str) -> dict:
    """The network arguments of the zoo config ``models/<arch>.yaml``."""
    import yaml

    return yaml.safe_load((ROOT / "models" / f"{arch}.yaml").read_text())["model"]["network_args"]


def delta_model(prior_path: Path, arch: str | None, type_names: list[str]):
    """prior only (``arch`` None) or Δ ``arch`` with the zoo's network arguments on the fitted prior."""
    import torch

    from cgzoo.models import CGModel, build_network
    from cgzoo.priors import load_prior

    prior = load_prior(prior_path)
    if arch is None:
        return CGModel(prior, None, mode="prior_only")
    torch.manual_seed(0)
    return CGModel(prior, build_network(arch, type_names, **zoo_network_args(arch)), mode="delta", energy_scale=0.1)


def run_md(model, start: str, out: Path, engine: str, timestep_fs: float, steps: int, ensemble: str = "nvt",
           threads: int = 1, mts: int = 1, save_every: int | None = None) -> dict:
    """One ``simulate`` run; wall time of the integration only (from the first to the last log row)."""
    import torch

    from cgzoo.md import Frame, Hook, SimulationSettings, simulate

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    save = save_every or steps
    settings = SimulationSettings(ensemble=ensemble, timestep_fs=timestep_fs, steps=steps, save_every=save, engine=engine,
                                  mts=mts, friction_per_ps=1.0)
    stamps: list[float] = []

    class Stamps(Hook):
        """The wall time of each saved frame."""

        def on_save(self, frame: Frame) -> None:
            stamps.append(time.perf_counter())

    try:
        simulate(model, start, out, settings, progress=False, overwrite=True, threads=threads, hooks=[Stamps()])
        status = "complete"
    except Exception as exc:  # noqa: BLE001 - an unstable dt is a result of the scan
        status = f"failed: {str(exc).splitlines()[0][:160]}"
    wall = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    done = (len(stamps) - 1) * save
    return {"engine": engine, "mts": mts, "threads": threads, "timestep_fs": timestep_fs, "steps": done, "status": status,
            "ms_per_step": 1e3 * wall / max(done, 1), "ns_per_day": done * timestep_fs * 1e-6 / (wall / 86400)}


def drift(run: Path, n_beads: int, temperature: float = 298.15) -> float:
    """|dE_tot/dt| in k_BT per degree of freedom per ns (least-squares slope of the logged total energy)."""
    from cgzoo.units import kT

    log = np.genfromtxt(run / "log.csv", delimiter=",", names=True)
    slope = np.polyfit(log["time_fs"] * 1e-6, log["etot_kcal_mol"], 1)[0]  # kcal/mol per ns
    return abs(float(slope)) / kT(temperature) / (3 * n_beads)


def timestep_scan(model, data: Path, engine: str, work: Path, length_fs: float, n_beads: int,
                  candidates: tuple[float, ...] = TIMESTEPS_FS) -> dict:
    """NVE drift per dt (in ``candidates`` order) from an NVT-equilibrated state; the largest dt passing the criterion.

    Going up, the scan stops at the first failing dt (larger ones are not tried); going down, at the first passing one.
    """
    ascending = list(candidates) == sorted(candidates)
    equil = work / f"equil_{engine}"
    run_md(model, f"{data}@0", equil, engine, 2.0, 1000, threads=CORES, save_every=100)
    start = str(equil)  # the run's last frame, with its bonded topology
    rows = []
    for timestep in candidates:
        steps = int(round(length_fs / timestep / 50)) * 50
        out = work / f"nve_{engine}_{timestep:g}"
        r = run_md(model, start, out, engine, timestep, steps, ensemble="nve", threads=CORES, save_every=50)
        r["drift_kT_per_dof_ns"] = drift(out, n_beads) if r["status"] == "complete" else float("nan")
        r["passes"] = r["status"] == "complete" and r["drift_kT_per_dof_ns"] < DRIFT_LIMIT
        rows.append(r)
        print(engine, timestep, r["status"], r["drift_kT_per_dof_ns"], flush=True)
        if r["passes"] != ascending:
            break
    passing = [r["timestep_fs"] for r in rows if r["passes"]]
    return {"engine": engine, "rows": rows, "timestep_fs": max(passing) if passing else min(candidates)}


def lammps_mpi(model, data: Path, work: Path, timestep_fs: float, steps: int, ranks: int) -> dict:
    """The exported LAMMPS input on ``ranks`` MPI ranks (1 OpenMP thread each): LAMMPS' own loop time."""
    from cgzoo.engines.lammps import mpi_command
    from cgzoo.engines.lammps_log import read_log
    from cgzoo.md import SimulationSettings
    from cgzoo.md.export import export_model

    out = work / f"lmp_mpi_{ranks}"
    settings = SimulationSettings(ensemble="nvt", timestep_fs=timestep_fs, steps=steps, save_every=steps)
    export_model(model, f"{data}@0", "lammps", out, settings, frames=1, overwrite=True)
    argv, env = mpi_command(ranks)
    subprocess.run(argv, cwd=out, env=env, capture_output=True, text=True, check=True)
    loop = read_log(out / "log.lammps").loop_time_s
    return {"engine": f"lammps (mpirun -np {ranks})", "mts": 1, "threads": ranks, "timestep_fs": timestep_fs, "steps": steps,
            "status": "complete", "ms_per_step": 1e3 * loop / steps, "ns_per_day": steps * timestep_fs * 1e-6 / (loop / 86400)}


def throughput(system: str, model_name: str, model, data: Path, work: Path, timesteps: dict, quick: bool) -> list[dict]:
    """Every engine × thread count for a pair-additive model; OpenMM (k = 1, 2, 4, 8) and ASE (k = 1, 4) on every
    core for SchNet, whose network dominates the step."""
    rows = []
    if model_name == "schnet":
        configs = [("openmm", CORES, k) for k in (1, 2, 4, 8)] + [("ase", CORES, k) for k in (1, 4)]
    else:
        configs = [(e, t, 1) for e in ("lammps", "openmm", "ase") for t in sorted({1, CORES})]
    for engine, threads, mts in configs:
        timestep = timesteps.get(engine, timesteps["lammps"])  # ASE: double-precision velocity Verlet, as LAMMPS
        if model_name == "schnet":
            steps = (4 if quick else 12) * mts
        else:
            steps = {"lammps": 1000 if quick else 5000, "openmm": 200 if quick else 1000, "ase": 48 if quick else 200}[engine]
        r = run_md(model, f"{data}@0", work / f"tp_{model_name}_{engine}_{threads}_{mts}", engine, timestep, steps,
                   threads=threads, mts=mts, save_every=steps // 2)
        r.update(system=system, model=model_name)
        rows.append(r)
        print(r, flush=True)
    if model_name != "schnet":
        for ranks in (1, 2):
            r = lammps_mpi(model, data, work, timesteps["lammps"], 2000 if quick else 10000, ranks)
            r.update(system=system, model=model_name)
            rows.append(r)
            print(r, flush=True)
    return rows


def mts_model(work: Path, checkpoint: str | None):
    """The Δ-model of the MTS checks: a trained checkpoint (``--mts-model``), else zoo SchNet (untrained, scale 0.1)
    on a prior force-matched here; with the RMS of its network and prior forces on the start frame."""
    from cgzoo.data.start import load_start
    from cgzoo.fitting.spec import fit_prior
    from cgzoo.md.calculator import CGCalculator, load_any_model
    from cgzoo.md.mts import split_calculators
    from cgzoo.priors import save_prior

    if checkpoint:
        model = load_any_model(checkpoint)
    else:
        prior, _ = fit_prior(DEFAULT, {"terms": [{"fit": "force_matching", "cutoff": 9.0}]}, progress=lambda m: None)
        save_prior(prior, work / "default_prior.json")
        model = delta_model(work / "default_prior.json", "schnet", ["W"])
    atoms, _ = load_start(f"{DEFAULT}@0")
    fast, slow = split_calculators(CGCalculator(model))
    rms = {name: float(np.sqrt(np.mean(calc.get_forces(atoms) ** 2))) for name, calc in (("prior", fast), ("network", slow))}
    return model, {"model": checkpoint or "zoo SchNet, untrained, energy scale 0.1", "rms_force_ratio_net_prior":
                   rms["network"] / rms["prior"]}


def mts_structure(model, work: Path, quick: bool) -> list[dict]:
    """g(r) of Δ-model NVT runs with k = 1 (two seeds) and k = 2, 4, 8 on the 300-bead default water."""
    from cgzoo.md import SimulationSettings, simulate
    from cgzoo.observables.structure import rdf
    from cgzoo.observables.trajectory import CGTrajectory

    steps = 96 if quick else 600
    curves, rows = {}, []
    for k, seed in ((1, 0), (1, 1), (2, 0), (4, 0), (8, 0)):
        out = work / f"mts_k{k}_s{seed}"
        t0 = time.perf_counter()
        simulate(model, f"{DEFAULT}@0", out, SimulationSettings(ensemble="nvt", timestep_fs=2.0, steps=steps, save_every=8,
                                                                 engine="openmm", mts=k, seed=seed, friction_per_ps=5.0),
                 progress=False, overwrite=True, threads=CORES)
        wall = time.perf_counter() - t0
        traj = CGTrajectory.from_run(out)
        r, g = rdf(traj.select(slice(len(traj.positions) // 5, None)), r_max=9.0, bins=90)["W-W"]
        curves[(k, seed)] = g
        rows.append({"k": k, "seed": seed, "wall_s": wall, "g_peak": float(g.max()), "r_peak": float(r[np.argmax(g)])})
    noise = float(np.sqrt(np.mean((curves[(1, 0)] - curves[(1, 1)]) ** 2)))
    for row in rows:
        row["g_rms_vs_k1"] = float(np.sqrt(np.mean((curves[(row["k"], row["seed"])] - curves[(1, 0)]) ** 2)))
        row["replica_noise"] = noise
    return rows


def mts_nve(model, work: Path, quick: bool) -> list[dict]:
    """NVE energy drift of a Δ-model (300-bead default water, OpenMM) with the network every k-th 2 fs step."""
    steps = 96 if quick else 480
    rows = []
    for k in (1, 2, 4, 8):
        out = work / f"mts_nve_k{k}"
        r = run_md(model, f"{DEFAULT}@0", out, "openmm", 2.0, steps, ensemble="nve", threads=CORES, mts=k, save_every=16)
        log = np.genfromtxt(out / "log.csv", delimiter=",", names=True)
        r.update(k=k, drift_kT_per_dof_ns=drift(out, 300), etot_std=float(log["etot_kcal_mol"].std()),
                 ekin_std=float(log["ekin_kcal_mol"].std()))
        rows.append(r)
        print(r, flush=True)
    return rows


def size_scaling(prior_path: Path, data: Path, work: Path, timestep_fs: float, quick: bool) -> list[dict]:
    """LAMMPS (every core, OpenMP) time per step on the water box replicated to 1k–32k beads."""
    from ase.io import write

    from cgzoo.data.start import load_start

    atoms, _ = load_start(f"{data}@0")
    rows = []
    for reps in ((1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2), (4, 2, 2), (4, 4, 2))[: 3 if quick else None]:
        big = atoms.repeat(reps)
        path = work / f"water_x{np.prod(reps)}.extxyz"
        write(path, big, format="extxyz")
        steps = 200 if quick else 1000
        r = run_md(delta_model(prior_path, None, ["W"]), str(path), work / f"size_{np.prod(reps)}", "lammps", timestep_fs,
                   steps, threads=CORES, save_every=steps)
        r.update(beads=len(big))
        rows.append(r)
        print(r, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test of the script, not figures)")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--only-mts", action="store_true", help="only the MTS parts (structure, NVE), appended on their own")
    parser.add_argument("--mts-model", default=None,
                        help="Δ checkpoint for the MTS parts, e.g. make demo's runs/demo/schnet_delta/checkpoints/best-*.ckpt")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    from cgzoo.runtime import tune_allocator

    tune_allocator()
    results: dict = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, {CORES} cores, "
                     f"Python {platform.python_version()}", "drift_limit_kT_per_dof_ns": DRIFT_LIMIT, "systems": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, results["mts_model"] = mts_model(work, args.mts_model)
        if args.only_mts:
            results["mts_structure"] = mts_structure(model, work, args.quick)
            results["mts_nve"] = mts_nve(model, work, args.quick)
            if not args.quick:
                (HERE / "md_engines_mts.json").write_text(json.dumps(results, indent=1))
                write_results({**results, "systems": {}}, args)
            return
        for system in args.systems:
            opts = SYSTEMS[system]
            opts = {**opts, "n_molecules": opts["n_molecules"] // 4} if args.quick else opts
            run, data, prior_path = reference_data(system, opts, work, args.quick)
            from cgzoo.data.dataset import load_topology

            top = load_topology(data)[0]
            prior_only = delta_model(prior_path, None, top.type_names)
            length = 2000.0 if args.quick else 20000.0
            scans = {"lammps": timestep_scan(prior_only, data, "lammps", work / f"{system}_scan", length, top.n_beads)}
            # OpenMM integrates the same tables with the same Verlet scheme: check LAMMPS' dt, stepping down if needed
            below = tuple(t for t in TIMESTEPS_FS if t <= scans["lammps"]["timestep_fs"])[::-1]
            scans["openmm"] = timestep_scan(prior_only, data, "openmm", work / f"{system}_scan", length / 2, top.n_beads,
                                            candidates=below)
            timesteps = {e: s["timestep_fs"] for e, s in scans.items()}
            atomistic = [atomistic_speed(system, run, opts["n_molecules"], t, 200 if args.quick else 1000)
                         for t in sorted({1, CORES})]
            rows = []
            for name in (None, "pair_mlp", "schnet"):
                model = delta_model(prior_path, name, top.type_names)
                rows += throughput(system, name or "prior_only", model, data, work / system, timesteps, args.quick)
            results["systems"][system] = {"beads": top.n_beads, "molecules": opts["n_molecules"], "scans": scans,
                                          "atomistic": atomistic, "rows": rows}
            print(json.dumps(results["systems"][system]["atomistic"]), flush=True)
        results["mts_structure"] = mts_structure(model, work, args.quick)
        results["mts_nve"] = mts_nve(model, work, args.quick)
        water = results["systems"].get("spce-water")
        if water:
            _, data, prior_path = (None, work / "spce-water_cg.h5", work / "spce-water_prior.json")
            results["size_scaling"] = size_scaling(prior_path, data, work, water["scans"]["lammps"]["timestep_fs"], args.quick)
    if args.quick:  # a smoke test of the script: its numbers are not figures
        print(json.dumps(results, indent=1))
        return
    (HERE / "md_engines.json").write_text(json.dumps(results, indent=1))
    write_results(results, args)


def write_results(results: dict, args: argparse.Namespace) -> None:
    """Append the run's tables to RESULTS.md."""
    lines = [f"\n## CG MD engines against the atomistic run ({results['date']})\n",
             f"Machine: {results['machine']}; command: `python experiments/benchmarks/md_engines.py"
             f"{' --only-mts --mts-model ' + args.mts_model if args.only_mts and args.mts_model else ''}`. Time step per engine: the largest of {list(TIMESTEPS_FS)} fs whose NVE "
             f"energy drift stays below {DRIFT_LIMIT} k_BT per degree of freedom per ns (prior only). Speed is per "
             "simulated ns; the ratio divides by the atomistic OpenMM run of the same molecules with the same thread count.\n"]
    for system, res in results["systems"].items():
        atom = {a["threads"]: a for a in res["atomistic"]}
        lines += [f"### {system}: {res['beads']} CG beads ({res['molecules']} molecules)\n",
                  "Time-step scan (NVE, prior only): " + "; ".join(
                      f"{e}: " + ", ".join(f"{r['timestep_fs']:g} fs → {r['drift_kT_per_dof_ns']:.2g}"
                                           + ("" if r["status"] == "complete" else " (unstable)") for r in s["rows"])
                      + f" ⇒ **{s['timestep_fs']:g} fs**" for e, s in res["scans"].items()) + "\n",
                  "| model | engine | MTS k | threads/ranks | dt (fs) | ms/step | ns/day | CG ÷ atomistic |", "|---|---|---|---|---|---|---|---|"]
        for r in res["rows"]:
            ref = atom.get(r["threads"], atom[max(atom)])
            lines.append(f"| {r['model']} | {r['engine']} | {r['mts']} | {r['threads']} | {r['timestep_fs']:g} | "
                         f"{r['ms_per_step']:.3g} | {r['ns_per_day']:.4g} | {r['ns_per_day'] / ref['ns_per_day']:.3g}× |")
        for a in res["atomistic"]:
            lines.append(f"| atomistic ({a['atoms']} atoms) | OpenMM | — | {a['threads']} | {a['timestep_fs']:g} | "
                         f"{a['ms_per_step']:.3g} | {a['ns_per_day']:.4g} | 1 |")
        lines.append("")
    if "mts_structure" in results:
        mts = results["mts_model"]
        lines += [f"### MTS: {mts['model']} (300-bead default water, OpenMM, NVT 2 fs inner step; RMS network force = "
                  f"{mts['rms_force_ratio_net_prior']:.3g} × RMS prior force on the start frame)\n",
                  "| k | seed | wall (s) | g(r) peak | r at peak (Å) | RMS Δg vs k=1 seed 0 | replica noise (k=1 seeds 0 vs 1) |",
                  "|---|---|---|---|---|---|---|"]
        for r in results["mts_structure"]:
            lines.append(f"| {r['k']} | {r['seed']} | {r['wall_s']:.1f} | {r['g_peak']:.3f} | {r['r_peak']:.2f} | "
                         f"{r['g_rms_vs_k1']:.4f} | {r['replica_noise']:.4f} |")
        lines.append("")
    if "mts_nve" in results:
        lines += [f"### MTS: NVE energy drift of {results['mts_model']['model']} (300-bead default water, OpenMM, 2 fs inner step)\n",
                  "| k | ms per inner step | drift (k_BT/dof/ns) | std E_tot (kcal/mol) | std E_kin (kcal/mol) |",
                  "|---|---|---|---|---|"]
        for r in results["mts_nve"]:
            lines.append(f"| {r['k']} | {r['ms_per_step']:.3g} | {r['drift_kT_per_dof_ns']:.3g} | {r['etot_std']:.3g} | "
                         f"{r['ekin_std']:.3g} |")
        lines.append("")
    if "size_scaling" in results:
        lines += ["### Time per step against system size (LAMMPS, prior only, every core)\n",
                  "| beads | ms/step | µs per bead-step |", "|---|---|---|"]
        for r in results["size_scaling"]:
            lines.append(f"| {r['beads']} | {r['ms_per_step']:.3g} | {1e3 * r['ms_per_step'] / r['beads']:.3g} |")
    with (HERE / "RESULTS.md").open("a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
