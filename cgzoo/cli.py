"""The ``cgzoo`` command: parses arguments and dispatches to the library; it holds no logic of its own."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cgzoo import __version__
from cgzoo.data.splits import DEFAULT_SPLIT
from cgzoo.errors import CGZooError
from cgzoo.evaluate import add_evaluate_parser
from cgzoo.runtime import tune_allocator
from cgzoo.units import LAMMPS_UNIT_STYLES


def _cmd_generate(args: argparse.Namespace) -> None:
    from cgzoo.generate import run_generate

    out = run_generate(
        args.system,
        args.out,
        n_molecules=args.n_molecules,
        temperature=args.temperature,
        pressure_bar=args.pressure,
        equil_ps=args.equil_ps,
        prod_ps=args.prod_ps,
        save_every_fs=args.save_every_fs,
        timestep_fs=args.timestep_fs,
        seed=args.seed,
        platform=args.platform,
        threads=args.threads,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    print(f"wrote {out}")


def _cmd_map(args: argparse.Namespace) -> None:
    from cgzoo.data.build import build_dataset
    from cgzoo.data.dataset import CGDataset, dataset_output
    from cgzoo.data.summary import format_summary, summarize
    from cgzoo.io import read_atomistic
    from cgzoo.mapping import CGMapper, load_mapping
    from cgzoo.mapping.force_map import ForceMapSettings
    from cgzoo.schema import validate

    dataset_output(args.out, args.overwrite)  # refuse a bad output before reading anything
    if args.traj is None and args.top is None:
        raise CGZooError("give --top and --traj, or --top with a cgzoo generate directory")
    traj, top = (args.top, None) if args.traj is None else (args.traj, args.top)
    source = read_atomistic(traj, top=top, format=args.format, lammps_units=args.lammps_units,
                            timestep_fs=args.timestep_fs)
    mapper = CGMapper(load_mapping(args.mapping), source.topology,
                      allow_constrained_crossing=args.allow_constrained_crossing, force_map=args.force_map)
    given = {"frames": args.force_map_frames, "max_frames": args.force_map_max_frames,
             "ridge": args.force_map_ridge}
    settings = validate(ForceMapSettings, {k: v for k, v in given.items() if v is not None},
                        "cgzoo map --force-map")
    out = build_dataset(source, mapper, args.out, overwrite=args.overwrite, chunk_size=args.chunk_size,
                        progress=not args.quiet, force_map=settings)
    print(f"wrote {out}: {source.n_frames} frames, {mapper.n_beads} beads")
    if out.suffix.lower() in (".h5", ".hdf5") and not args.quiet:
        print(format_summary(summarize(CGDataset.load(out))))


def _cmd_info(args: argparse.Namespace) -> None:
    from cgzoo.data.summary import format_summary, summarize_file

    info = summarize_file(args.dataset)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))


def _cmd_convert(args: argparse.Namespace) -> None:
    from cgzoo.data.dataset import CGDataset
    from cgzoo.data.interop import write_dataset_pair

    ds = CGDataset.load(args.dataset)
    if args.to == "lammps+dcd":
        topology, trajectory = write_dataset_pair(ds, args.out, overwrite=args.overwrite)
        print(f"wrote {topology} and {trajectory} ({ds.n_frames} frames)")
    else:
        print(f"wrote {ds.save(args.out, overwrite=args.overwrite)} ({ds.n_frames} frames)")


def _cmd_split(args: argparse.Namespace) -> None:
    from cgzoo.data.dataset import CGDataset
    from cgzoo.data.splits import block_split

    ds = CGDataset.load(args.dataset)
    splits = block_split(ds.n_frames, tuple(args.fractions), n_blocks=args.blocks, gap=args.gap, seed=args.seed)
    for name, frames in splits.items():
        spans = ", ".join(f"{int(a)}–{int(b)}" for a, b in _runs(frames))
        print(f"{name:<5} {len(frames):>6} frames  [{spans}]")


def _runs(frames) -> list[tuple[int, int]]:
    """Contiguous runs of sorted frame indices as (first, last) pairs."""
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], int(f))
        else:
            runs.append((int(f), int(f)))
    return runs


def _cmd_fit_prior(args: argparse.Namespace) -> None:
    from cgzoo.fitting.spec import run_fit_prior

    report = run_fit_prior(args.data, args.prior, args.out, export=args.export, plots=not args.no_plots,
                           overwrite=args.overwrite, progress=lambda msg: None if args.quiet else print(msg),
                           show_progress=False if args.quiet else None)
    for name, err in report["errors"].items():
        if err.get("frames"):
            print(f"{name:<5} force RMSE {err['force_rmse']:.4f} kcal/mol/Å "
                  f"(reference RMS {err['reference_force_rms']:.4f}, {err['frames']} frames)")
    print(f"wrote {args.out}/prior.json, report.md" + (", plots/" if not args.no_plots else "") +
          (", tables/" if args.export else ""))


#: ``cgzoo simulate`` options that are simulation settings (field: option dest); an option left out (None) takes
#: the settings' default in a new run and the run's recorded value on ``--restart``
SIMULATE_SETTINGS = {"ensemble": "ensemble", "temperature_K": "temperature", "pressure_bar": "pressure",
                     "timestep_fs": "timestep_fs", "steps": "steps", "save_every": "save_every",
                     "friction_per_ps": "friction", "barostat": "barostat", "seed": "seed", "max_force": "max_force",
                     "engine": "engine", "mts": "mts"}


def _cmd_simulate(args: argparse.Namespace) -> None:
    from cgzoo.md import SimulationSettings, simulate
    from cgzoo.md.friction import friction_option

    given = {name: getattr(args, dest) for name, dest in SIMULATE_SETTINGS.items() if getattr(args, dest) is not None}
    given.update(friction_option(given.pop("friction_per_ps"), args.model) if "friction_per_ps" in given else {})
    settings = SimulationSettings(**given)
    try:
        out = simulate(args.model, args.start or "", args.out, settings, restart=args.restart, overwrite=args.overwrite,
                       device=args.device, progress=not args.quiet, threads=args.threads)
    except ValueError as exc:  # the calculator refused the structure (bead types, periodicity)
        raise CGZooError(f"{args.start or args.out}: {exc}") from None
    print(f"wrote {out}")


def _cmd_export(args: argparse.Namespace) -> None:
    from cgzoo.md import SimulationSettings
    from cgzoo.md.export import export_model

    settings = SimulationSettings(ensemble=args.ensemble, temperature_K=args.temperature, pressure_bar=args.pressure,
                                  timestep_fs=args.timestep_fs, steps=args.steps, save_every=args.save_every,
                                  friction_per_ps=args.friction, barostat=args.barostat, seed=args.seed)
    try:
        report = export_model(args.model, args.start, args.engine, args.out, settings, frames=args.frames,
                              overwrite=args.overwrite)
    except ValueError as exc:  # the calculator refused the structure (bead types, periodicity)
        raise CGZooError(f"{args.start}: {exc}") from None
    worst = max(report["tabulation_error"].items(), key=lambda kv: kv[1]["max_dF"], default=None)
    if worst:
        print(f"tabulation error: max |dF| {worst[1]['max_dF']:.3g} ({worst[0]}, at {worst[1]['at']:.3g}; relative "
              f"{worst[1]['max_rel_dF']:.2g}) on grid midpoints; on "
              f"{report['frame_error']['frames']} frames max |dF| {report['frame_error']['max_dF']:.3g} kcal/mol/Å")
    print(f"wrote {args.out}: " + ", ".join(report["files"]) + ", export.json")


def _cmd_export_model(args: argparse.Namespace) -> None:
    from cgzoo.md.export import export_compiled

    try:
        exported = export_compiled(args.model, args.start, args.out, overwrite=args.overwrite)
    except ValueError as exc:  # the calculator refused the structure, or the model cannot be compiled
        raise CGZooError(f"{args.model}: {exc}") from None
    print(f"wrote {args.out}: {exported.family} compiled for {args.start} ({str(exported.dtype).removeprefix('torch.')}, "
          f"cutoff {exported.cutoff:g} Å)")


def _add_export_model_parser(sub: argparse._SubParsersAction) -> None:
    em = sub.add_parser("export-model", help="compile a model to TorchScript for a system (energy, forces, stress), "
                                             "for CGCalculator or torch.jit.load")
    em.add_argument("model", help="checkpoint (.ckpt) or fitted prior (prior.json or its directory)")
    em.add_argument("--start", required=True, help="the system it is compiled for: DATA.h5[@FRAME], a run directory "
                                                   "or an ASE-readable file (bonded topology from the first two)")
    em.add_argument("--out", required=True, type=Path, help="TorchScript file to write")
    em.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    em.set_defaults(func=_cmd_export_model)


def _cmd_export_tables(args: argparse.Namespace) -> None:
    from cgzoo.md.export import export_model_tables

    try:
        report = export_model_tables(args.model, args.start, args.out, args.format, network_only=args.network_only,
                                     overwrite=args.overwrite)
    except ValueError as exc:  # the calculator refused the structure (bead types, periodicity)
        raise CGZooError(f"{args.start}: {exc}") from None
    print(f"wrote {args.out}: {len(report['files'])} files in " + ", ".join(args.format) + ", tables.json")


def _add_export_tables_parser(sub: argparse._SubParsersAction) -> None:
    et = sub.add_parser("export-tables", help="write a pair-additive model (a pair_mlp with its prior, or its network "
                                              "alone) as LAMMPS/GROMACS/VOTCA tables, which the table_file prior reads")
    et.add_argument("--model", required=True, help="checkpoint (.ckpt) or fitted prior (prior.json or its directory)")
    et.add_argument("--start", required=True, help="the system whose bead types and bonded terms the tables cover: "
                                                   "DATA.h5[@FRAME], a run directory or an ASE-readable file")
    et.add_argument("--out", required=True, type=Path, help="output directory (one subdirectory per format)")
    et.add_argument("--format", nargs="+", choices=["lammps", "gromacs", "votca"], default=["lammps"],
                    help="table formats to write (default: %(default)s)")
    et.add_argument("--network-only", action="store_true", help="the network's learned pair energy, without the prior")
    et.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    et.set_defaults(func=_cmd_export_tables)


def _cmd_fit_friction(args: argparse.Namespace) -> None:
    from cgzoo.refine.friction import fit_friction

    result = fit_friction(args.model, args.data, args.out, kind=args.kind, gammas=args.gammas,
                          window_ps=tuple(args.window_ps), run_ps=args.run_ps, equil_ps=args.equil_ps,
                          timestep_fs=args.timestep_fs, save_every_fs=args.save_every_fs, dpd_cutoff=args.dpd_cutoff,
                          engine=args.engine, seed=args.seed, threads=args.threads, install=args.install,
                          overwrite=args.overwrite, progress=lambda msg: None if args.quiet else print(msg))
    print(f"wrote {args.out}/friction.json (γ = {result['fitted_scale_per_ps']:.4g}/ps), fit.json, report.md, plots")


def _add_fit_friction_parser(sub: argparse._SubParsersAction) -> None:
    """``cgzoo fit-friction``: fit a per-type Langevin or DPD friction to the reference's molecular self-diffusion."""
    ff = sub.add_parser("fit-friction", help="fit a Langevin or DPD friction so the model's molecular D matches the data's")
    ff.add_argument("--model", required=True, help="checkpoint (.ckpt) or fitted prior (prior.json or its directory)")
    ff.add_argument("--data", required=True, type=Path, help="reference CG dataset (.h5)")
    ff.add_argument("--out", required=True, type=Path, help="output directory: friction.json, fit.json, report.md, plots")
    ff.add_argument("--kind", choices=["langevin", "dpd"], default="langevin", help="Langevin (per bead) or DPD (pairwise, momentum-conserving) friction (default: %(default)s)")
    ff.add_argument("--gammas", type=float, nargs="+", default=[10.0, 40.0],
                    help="friction scales of the first runs, 1/ps (langevin: with the default run's 1/ps)")
    ff.add_argument("--window-ps", type=float, nargs=2, default=[2.0, 8.0], help="MSD lag window of D, ps (default: %(default)s)")
    ff.add_argument("--run-ps", type=float, default=20.0, help="measured length of each run, ps (default: %(default)s)")
    ff.add_argument("--equil-ps", type=float, default=4.0, help="length dropped at the start of each run, ps (default: %(default)s)")
    ff.add_argument("--timestep-fs", type=float, default=2.0, help="MD time step, fs (default: %(default)s)")
    ff.add_argument("--save-every-fs", type=float, default=20.0, help="frame interval of the runs (VACF), fs (default: %(default)s)")
    ff.add_argument("--dpd-cutoff", type=float, default=None, help="DPD weight-function range, Å (--kind dpd)")
    ff.add_argument("--engine", choices=["auto", "ase", "lammps"], default="auto", help="MD engine of the runs (default: %(default)s)")
    ff.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    ff.add_argument("--threads", type=int, default=None, help="CPU threads of LAMMPS")
    ff.add_argument("--install", action="store_true", help="also write friction.json beside the model (--friction auto)")
    ff.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ff.add_argument("--quiet", action="store_true", help="no progress lines")
    ff.set_defaults(func=_cmd_fit_friction)


def _cmd_study(args: argparse.Namespace) -> None:
    from cgzoo.study import run_study

    study, states = run_study(args.config, args.preset, workers=args.workers, report_only=args.report_only,
                              scheduler=args.scheduler)
    failed = {name: s.get("error") for name, s in states.items() if s.get("status") in ("failed", "skipped")}
    print(f"wrote {study.results_dir}/results.csv, summary.md, figures")
    if failed:
        for name, error in list(failed.items())[:20]:
            print(f"  not done: {name}: {error}")
        raise CGZooError(f"{len(failed)} study tasks failed or were skipped (details in each task.json)")


def _cmd_noise_floor(args: argparse.Namespace) -> None:
    from cgzoo.meanforce import run_noise_floor, score_models

    if args.source is None and args.mapping is None:
        if not args.model:
            raise CGZooError("give --source and --mapping to measure, or --model to score an existing --out")
        summary = score_models(args.out, args.model)
    elif args.source is None or args.mapping is None:
        raise CGZooError("--source and --mapping go together")
    else:
        summary = run_noise_floor(args.source, args.mapping, args.out, configs=args.configs, run_ps=args.ps,
                                  equil_ps=args.equil_ps, stiffness=args.stiffness, sample_every_fs=args.sample_every_fs,
                                  timestep_fs=args.timestep_fs, seed=args.seed, platform=args.platform,
                                  threads=args.threads, models=args.model, overwrite=args.overwrite,
                                  force_map=args.force_map)
    for name, f in summary["floor"].items():
        print(f"{name:<8} noise floor {f['fraction']:.4f} ± {f['fraction_error']:.4f} of Var F "
              f"(R² ceiling {1 - f['fraction']:.4f})")
    for model, scores in summary["models"].items():
        m = scores["all"]
        print(f"{model}: R² vs mean force {m['r2_mean']:.4f} ± {m['r2_mean_error']:.4f}, vs raw {m['r2_raw']:.4f}, "
              f"excess MSE {m['excess_mse']:.3f} ± {m['excess_mse_error']:.3f} (kcal/mol/Å)²")
    print(f"wrote {args.out}/noise_floor.json, report.md, noise_floor.png, mean_forces.npz")


def _add_noise_floor_parser(sub: argparse._SubParsersAction) -> None:
    nf = sub.add_parser("noise-floor", help="measure a mapping's irreducible force error (mean force by restrained "
                                            "atomistic MD) and score models against the mean force")
    nf.add_argument("--source", type=Path, default=None, help="cgzoo generate run directory")
    nf.add_argument("--mapping", type=Path, default=None, help="mapping file (.yaml or VOTCA .xml)")
    nf.add_argument("--out", required=True, type=Path,
                    help="output directory (resumed if it holds finished configurations; scored if only --model)")
    nf.add_argument("--configs", type=_positive_int, default=8, help="M configurations, evenly spaced over the run (default: %(default)s)")
    nf.add_argument("--ps", type=float, default=2.0, help="sampled length of each restrained run, ps (default: %(default)s)")
    nf.add_argument("--equil-ps", type=float, default=0.2, help="discarded start of each restrained run, ps (default: %(default)s)")
    nf.add_argument("--stiffness", type=float, default=3000.0,
                    help="restraint K on bead centres, kcal/mol/Å² (check the floor is flat in K; docs/noise_floor.md) (default: %(default)s)")
    nf.add_argument("--sample-every-fs", type=float, default=20.0, help="mapped-force sample interval, fs (default: %(default)s)")
    nf.add_argument("--timestep-fs", type=float, default=None,
                    help="MD time step, fs (default: the source run's; stiff restraints may need less)")
    nf.add_argument("--force-map", choices=["basic", "optimized"], default=None,
                    help="force map whose noise is measured (default: the mapping file's; optimized is fitted on the "
                         "run's training frames, as cgzoo map does)")
    nf.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    nf.add_argument("--platform", default="CPU", help="OpenMM platform: CPU, CUDA, OpenCL, Reference (default: %(default)s)")
    nf.add_argument("--threads", type=int, default=None, help="CPU threads (OpenMM default if omitted)")
    nf.add_argument("--model", action="append", default=[], type=Path,
                    help="prior directory, prior.json or checkpoint to score (repeatable)")
    nf.add_argument("--overwrite", action="store_true", help="discard a previous output in --out and start again")
    nf.set_defaults(func=_cmd_noise_floor)


#: what ``cgzoo --help`` says the command does (plain text: argparse prints it as it is)
DESCRIPTION = ("Machine-learned coarse-grained molecular dynamics: generate or read atomistic data, map it to beads, "
               "fit physics priors, train networks on the residual forces, run MD and evaluate it.")


def _positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _cmd_refine_pressure(args: argparse.Namespace) -> None:
    from cgzoo.refine.pressure import RefineSettings, refine_pressure

    settings = RefineSettings(target_bar=args.target_bar, iterations=args.iterations, steps=args.steps,
                              equilibration_steps=args.equilibration_steps, timestep_fs=args.timestep_fs,
                              save_every=args.save_every, tolerance_bar=args.tolerance, engine=args.engine,
                              threads=args.threads, start_frame=args.start_frame, cutoff=args.cutoff, seed=args.seed)
    report = refine_pressure(args.prior, args.data, args.out, settings, export=args.export, overwrite=args.overwrite,
                             progress=lambda msg: None if args.quiet else print(msg))
    best = report["iterations"][report["chosen"]]
    print(f"wrote {args.out}/prior.json: A = {best['amplitude']:+.5f} kcal/mol, NVT P = {best['pressure_bar']:.0f} "
          f"± {best['sem_bar']:.0f} bar" + ("" if report["converged"] else " (not converged)"))


def _add_refine_pressure_parser(sub: argparse._SubParsersAction) -> None:
    """``cgzoo refine-pressure``: the pressure ramp of a prior iterated against its own NVT MD."""
    ref = sub.add_parser("refine-pressure", help="iterate a prior's pressure ramp until its NVT pressure is the target")
    ref.add_argument("--prior", required=True, type=Path, help="prior directory or prior.json (fit-prior output)")
    ref.add_argument("--data", required=True, type=Path, help="CG dataset (.h5): start frame, box and temperature")
    ref.add_argument("--out", required=True, type=Path, help="output prior directory")
    ref.add_argument("--target-bar", required=True, type=float, help="reference pressure at the dataset's density, bar")
    ref.add_argument("--iterations", type=int, default=6, help="at most this many NVT runs (default: %(default)s)")
    ref.add_argument("--steps", type=int, default=10_000, help="NVT steps per iteration (default: %(default)s)")
    ref.add_argument("--equilibration-steps", type=int, default=2_000, help="steps left out of each average (default: %(default)s)")
    ref.add_argument("--timestep-fs", type=float, default=2.0, help="MD time step, fs (default: %(default)s)")
    ref.add_argument("--save-every", type=int, default=50, help="steps between logged pressures (default: %(default)s)")
    ref.add_argument("--tolerance", type=float, default=50.0, help="bar; also stops within 2 standard errors (default: %(default)s)")
    ref.add_argument("--engine", choices=["lammps", "openmm", "ase"], default="lammps", help="MD engine of the runs (default: %(default)s)")
    ref.add_argument("--threads", type=int, default=1, help="CPU threads of the engine (default: %(default)s)")
    ref.add_argument("--start-frame", type=int, default=0, help="dataset frame the runs start from (default: %(default)s)")
    ref.add_argument("--cutoff", type=float, default=None, help="Å, range of a new ramp (default: the pair cutoff)")
    ref.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    ref.add_argument("--export", nargs="*", choices=["lammps", "gromacs", "votca"], default=[], help="also write tables of the refined prior in these formats")
    ref.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ref.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    ref.set_defaults(func=_cmd_refine_pressure)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every ``cgzoo`` verb."""
    parser = argparse.ArgumentParser(prog="cgzoo", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"cgzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{generate,map,info,convert,split,fit-prior,fit,validate,test,predict,simulate,export,evaluate,study,noise-floor,refine-pressure,fit-friction}")
    for verb in LIGHTNING_VERBS:
        sub.add_parser(verb, help=f"Lightning CLI: {verb} a model (cgzoo {verb} --help; "
                                  "--config models/<arch>.yaml --config models/modes/<mode>.yaml)")

    gen = sub.add_parser("generate", help="run an atomistic OpenMM simulation of a built-in system, writing forces")
    gen.add_argument("system", help="built-in system: spce-water, methanol-ua, hexane-ua, cyclohexane-ua")
    gen.add_argument("--out", required=True, type=Path, help="output directory (resumed if incomplete)")
    gen.add_argument("--n-molecules", type=int, default=None, help="number of molecules (system default if omitted)")
    gen.add_argument("--temperature", type=float, default=298.15, help="K (default: %(default)s)")
    gen.add_argument("--pressure", type=float, default=1.01325, help="bar (NPT equilibration) (default: %(default)s)")
    gen.add_argument("--equil-ps", type=float, default=50.0, help="NPT equilibration length, ps (default: %(default)s)")
    gen.add_argument("--prod-ps", type=float, default=100.0, help="NVT production length, ps (default: %(default)s)")
    gen.add_argument("--save-every-fs", type=float, default=500.0, help="frame interval, fs (default: %(default)s)")
    gen.add_argument("--timestep-fs", type=float, default=2.0, help="integration time step, fs (default: %(default)s)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    gen.add_argument("--platform", default="CPU", help="OpenMM platform: CPU, CUDA, OpenCL, Reference (default: %(default)s)")
    gen.add_argument("--threads", type=int, default=None, help="CPU threads (OpenMM default if omitted)")
    gen.add_argument("--overwrite", action="store_true", help="replace a finished output directory")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_cmd_generate)

    mp = sub.add_parser("map", help="map an atomistic trajectory with forces onto CG beads, writing a CG dataset")
    mp.add_argument("--top", type=Path, default=None,
                    help="topology (.tpr, .gro, .pdb, LAMMPS data, cgzoo generate directory or topology.json)")
    mp.add_argument("--traj", type=Path, default=None,
                    help="trajectory with forces (.trr, LAMMPS dump, .extxyz); omit for a cgzoo generate directory")
    mp.add_argument("--mapping", required=True, type=Path, help="mapping: YAML or VOTCA XML")
    mp.add_argument("--out", required=True, type=Path, help="dataset: .h5, or .extxyz for interop")
    mp.add_argument("--format", default=None, help="force the trajectory format (MDAnalysis format name)")
    mp.add_argument("--lammps-units", choices=list(LAMMPS_UNIT_STYLES), default=None,
                    help="LAMMPS dump: the 'units' style of the run that wrote it (required: a dump does not record it)")
    mp.add_argument("--timestep-fs", type=float, default=None,
                    help="LAMMPS dump: the run's time step in fs (required: a dump records steps, not times)")
    mp.add_argument("--chunk-size", type=int, default=128, help="frames mapped at a time (default: %(default)s)")
    mp.add_argument("--allow-constrained-crossing", action="store_true",
                    help="map even if a constrained bond crosses two beads (forces will be biased)")
    mp.add_argument("--force-map", choices=["basic", "optimized"], default=None,
                    help="bead forces: basic (sum of the bead's atomic forces) or optimized (least-variance "
                         "consistent map fitted to the atomistic forces); default: the mapping file's force_map")
    mp.add_argument("--force-map-frames", choices=["train", "all"], default=None,
                    help="optimized: fit on the default split's training frames (default) or on all frames")
    mp.add_argument("--force-map-max-frames", type=int, default=None,
                    help="optimized: at most this many frames, spread evenly (default 200)")
    mp.add_argument("--force-map-ridge", type=float, default=None,
                    help="optimized: ridge on the force covariance, relative to its mean variance (default 1e-4)")
    mp.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    mp.add_argument("--quiet", action="store_true", help="no progress bar")
    mp.set_defaults(func=_cmd_map)

    info = sub.add_parser("info", help="summarise a CG dataset")
    info.add_argument("dataset", type=Path, help="CG dataset: .h5, or .extxyz as cgzoo writes it")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_cmd_info)

    conv = sub.add_parser("convert", help="write a CG dataset (.h5 or .extxyz) in another format")
    conv.add_argument("dataset", type=Path, help="CG dataset: .h5, or .extxyz as cgzoo writes it")
    conv.add_argument("out", type=Path, help="dataset (.h5 or .extxyz), or with --to lammps+dcd a directory")
    conv.add_argument("--to", choices=["dataset", "lammps+dcd"], default="dataset",
                      help="dataset (default; the suffix of OUT picks the format) or lammps+dcd: topology.data + "
                           "traj.dcd in OUT, for VMD, OVITO and MDAnalysis (docs/interop.md)")
    conv.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    conv.set_defaults(func=_cmd_convert)

    fit = sub.add_parser("fit-prior", help="fit a prior (force matching, Boltzmann inversion, least squares) to a dataset")
    fit.add_argument("--data", required=True, type=Path, help="CG dataset (.h5)")
    fit.add_argument("--prior", required=True, type=Path, help="prior spec YAML (see datasets/priors/)")
    fit.add_argument("--out", required=True, type=Path, help="output directory: prior.json, report, plots, tables")
    fit.add_argument("--export", nargs="*", choices=["lammps", "gromacs", "votca"], default=[],
                     help="also write tables in these formats (default: %(default)s)")
    fit.add_argument("--no-plots", action="store_true", help="write no PNG plots of the terms")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    fit.add_argument("--quiet", action="store_true",
                     help="no per-term lines and no progress bars (bars are drawn only when stderr is a terminal)")
    fit.set_defaults(func=_cmd_fit_prior)
    _add_refine_pressure_parser(sub)

    sim = sub.add_parser("simulate", help="run CG MD with a trained model through ASE, OpenMM or LAMMPS (NVT, NPT, NVE)")
    sim.add_argument("--model", required=True,
                     help="checkpoint (.ckpt) of a trained model, or a fitted prior (prior.json or its directory)")
    sim.add_argument("--start", help="DATA.h5 or DATA.h5@FRAME (a CG dataset), a simulate run directory (its last frame "
                                     "and bonds), a cgzoo extxyz[@FRAME] (with its bonds), or any ASE-readable file")
    sim.add_argument("--out", required=True, type=Path, help="run directory")
    keep = "; on --restart the run's own"
    sim.add_argument("--ensemble", choices=["nvt", "npt", "nve"], default=None, help=f"default nvt{keep}")
    sim.add_argument("--steps", type=int, default=None,
                     help="total run length in steps (default 10000; on --restart the run's recorded target)")
    sim.add_argument("--timestep-fs", type=float, default=None, help=f"default 2.0{keep}")
    sim.add_argument("--temperature", type=float, default=None, help=f"K (default 298.15{keep})")
    sim.add_argument("--pressure", type=float, default=None, help=f"bar, NPT (default 1.01325{keep})")
    sim.add_argument("--friction", default=None, metavar="GAMMA|FILE|auto",
                     help="NVT friction: a global Langevin γ in 1/ps, a friction file (cgzoo fit-friction), or auto: "
                          f"the friction.json beside --model (default 1.0{keep})")
    sim.add_argument("--barostat", choices=["mtk", "berendsen", "montecarlo"], default=None,
                     help=f"NPT: mtk or berendsen (ASE, LAMMPS), montecarlo (OpenMM) (default mtk{keep})")
    sim.add_argument("--engine", choices=["auto", "ase", "openmm", "lammps"], default=None,
                     help="auto (default): the fastest engine that runs the model exactly (LAMMPS, then OpenMM, for pair "
                          f"models; ASE for graph networks and user priors){keep}")
    sim.add_argument("--mts", type=int, default=None, metavar="K",
                     help=f"Δ-models: evaluate the network every K steps, the prior every step (r-RESPA) (default 1{keep})")
    sim.add_argument("--threads", type=int, default=None, help="CPU threads of OpenMM/LAMMPS (engine default if omitted)")
    sim.add_argument("--save-every", type=int, default=None, help=f"steps between saved frames (default 50{keep})")
    sim.add_argument("--max-force", type=float, default=None,
                     help="stability guard, kcal/mol/Å (default 1000; may change on --restart)")
    sim.add_argument("--seed", type=int, default=None, help=f"default 0{keep}")
    sim.add_argument("--device", default="cpu", help="torch device of the model: cpu (default), cuda, cuda:N, mps")
    sim.add_argument("--restart", action="store_true",
                     help="continue the run in --out (to --steps, else its own target); other physics is refused")
    sim.add_argument("--overwrite", action="store_true", help="delete the run in --out and start a new one")
    sim.add_argument("--quiet", action="store_true", help="no progress bar (it is drawn only when stderr is a terminal)")
    sim.set_defaults(func=_cmd_simulate)

    exp = sub.add_parser("export", help="write a model and a start structure as OpenMM, LAMMPS or GROMACS input files "
                                        "(GROMACS: bonded tables and Lennard-Jones pairs, docs/engines_gromacs.md)")
    exp.add_argument("--model", required=True, help="checkpoint (.ckpt) or fitted prior (prior.json or its directory)")
    exp.add_argument("--start", required=True, help="DATA.h5 or DATA.h5@FRAME, or any ASE-readable file")
    exp.add_argument("--engine", required=True, choices=["openmm", "lammps", "gromacs"],
                     help="the engine whose input files are written")
    exp.add_argument("--out", required=True, type=Path, help="output directory")
    exp.add_argument("--ensemble", choices=["nvt", "npt", "nve"], default="nvt", help="ensemble of the written input (default: %(default)s)")
    exp.add_argument("--steps", type=int, default=10000, help="length of the LAMMPS/GROMACS input's run (default: %(default)s)")
    exp.add_argument("--timestep-fs", type=float, default=2.0, help="MD time step, fs (default: %(default)s)")
    exp.add_argument("--temperature", type=float, default=298.15, help="K (default: %(default)s)")
    exp.add_argument("--pressure", type=float, default=1.01325, help="bar (NPT) (default: %(default)s)")
    exp.add_argument("--friction", type=float, default=1.0, help="Langevin friction, 1/ps (default: %(default)s)")
    exp.add_argument("--barostat", choices=["mtk", "berendsen"], default="mtk",
                     help="LAMMPS NPT; GROMACS uses C-rescale (default: %(default)s)")
    exp.add_argument("--save-every", type=int, default=50,
                     help="steps between dumped frames (LAMMPS, GROMACS) (default: %(default)s)")
    exp.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    exp.add_argument("--frames", type=int, default=10, help="dataset frames for the tabulation-error report (default: %(default)s)")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    exp.set_defaults(func=_cmd_export)

    add_evaluate_parser(sub)
    _add_noise_floor_parser(sub)
    _add_fit_friction_parser(sub)
    _add_export_model_parser(sub)
    _add_export_tables_parser(sub)

    st = sub.add_parser("study", help="run a study grid (data → prior → train → simulate → evaluate), resumable")
    st.add_argument("config", type=Path, help="study YAML, e.g. experiments/delta_study/study.yaml")
    st.add_argument("--preset", required=True, help="preset in the study file (e.g. cpu, full)")
    st.add_argument("--workers", type=_positive_int, default=None,
                    help="parallel worker processes (the preset's if omitted)")
    st.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="run the tasks on the running Dask cluster of this scheduler, e.g. tcp://host:8786, whose "
                         "workers see the work directory under the same paths (default: the preset's 'scheduler', "
                         "else a local cluster of --workers processes; docs/study_cluster.md)")
    st.add_argument("--report-only", action="store_true", help="only rewrite the results from finished tasks")
    st.set_defaults(func=_cmd_study)

    split = sub.add_parser("split", help="show the contiguous-block train/val/test split of a dataset")
    split.add_argument("dataset", type=Path, help="CG dataset: .h5, or .extxyz as cgzoo writes it")
    split.add_argument("--fractions", type=float, nargs=3, default=DEFAULT_SPLIT["fractions"], metavar=("TRAIN", "VAL", "TEST"),
                       help="fractions of the frames (default: %(default)s, what training and fitting use)")
    split.add_argument("--blocks", type=int, default=DEFAULT_SPLIT["n_blocks"], help="contiguous time blocks (default: %(default)s)")
    split.add_argument("--gap", type=int, default=DEFAULT_SPLIT["gap"],
                       help="frames dropped where two splits meet (default: %(default)s)")
    split.add_argument("--seed", type=int, default=DEFAULT_SPLIT["seed"], help="which blocks go where (default: %(default)s)")
    split.set_defaults(func=_cmd_split)
    return parser


LIGHTNING_VERBS = ("fit", "validate", "test", "predict")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cgzoo`` console script; user errors print one line and exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    tune_allocator()
    if argv and argv[0] in LIGHTNING_VERBS:
        from cgzoo.training.cli import run_lightning

        return _report_errors(argv[0], lambda: run_lightning(argv))
    args = build_parser().parse_args(argv)
    return _report_errors(args.command, lambda: args.func(args))


def _report_errors(command: str, run: Callable[[], object]) -> int:
    """Run a verb; cgzoo's own errors and the operating system's file errors become one line and exit 2.

    Any other exception is a bug in cgzoo and keeps its traceback.
    """
    try:
        run()
    except CGZooError as exc:
        message = str(exc)
    except OSError as exc:  # a path that cannot be read or written: name it, say why
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"{where}{exc.strerror or exc}"
    except KeyboardInterrupt:  # outputs are atomic: nothing partial is left under a final name
        print(f"cgzoo {command}: interrupted", file=sys.stderr)
        return 130
    else:
        return 0
    print(f"cgzoo {command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
