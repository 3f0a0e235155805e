"""Eager against compiled (TorchScript, :mod:`cgzoo.models.export`) force calls of every family through ``CGCalculator``.

System: the first frame of the default CG water (300 beads, 20.8 Å periodic box), float64 (the
calculator's default), one torch thread. Families: prior only (a Lennard-Jones prior, cutoff 9 Å)
and every registered network at its zoo size (``models/<arch>.yaml``) in ``ml_only`` and ``delta``
(the same prior) modes. One force call = ``atoms.get_forces()`` after every bead moved by up to
0.02 Å, so the call includes the Verlet-list step, the graph and energy + forces, as in MD; both
calculators see the same moves, taking turns. The compiled one is traced on its first call (timed
separately), and each timing follows ``--warmup`` calls. Results go to ``compiled_model.json`` and ``RESULTS.md``.
Usage::

    python experiments/benchmarks/compiled_model.py [--calls 20] [--warmup 3] [--families prior_only 'schnet delta' …]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from cgzoo.data.dataset import CGDataset
from cgzoo.data.export import frame_to_atoms
from cgzoo.md.calculator import CGCalculator
from cgzoo.models import NETWORKS, CGModel, build_network
from cgzoo.priors import build_prior

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WATER = ROOT / "datasets" / "default" / "spce-water_1bead_com.h5"
#: a plain LJ prior for water beads (σ, ε of a CG water bead), the prior of the prior-only and Δ rows
PRIOR = {"class_path": "lennard_jones", "init_args": {"type_names": ["W"], "cutoff": 9.0,
                                                      "params": {"W-W": {"sigma": 3.0, "epsilon": 0.5}}}}


def models() -> dict[str, CGModel]:
    """Row label → model: the prior alone, then every registered network (zoo size) in ml_only and delta mode."""
    out = {"prior_only": CGModel(build_prior(PRIOR), None, mode="prior_only")}
    for name in NETWORKS:
        args = yaml.safe_load((ROOT / "models" / f"{name}.yaml").read_text())["model"]["network_args"]
        for mode in ("ml_only", "delta"):
            torch.manual_seed(0)
            out[f"{name} {mode}"] = CGModel(build_prior(PRIOR), build_network(name, ["W"], **args), mode=mode)
    return out


def time_calls(calcs: list[CGCalculator], atoms, moves: np.ndarray, warmup: int) -> list[tuple[float, float, np.ndarray]]:
    """Per calculator: (seconds of its first call, mean seconds per later call, forces of the last call) over ``moves``.

    The calculators take turns on each configuration, so a load that changes during the run
    (a shared machine) slows them alike.
    """
    copies = [atoms.copy() for _ in calcs]
    for copy, calc in zip(copies, calcs):
        copy.calc = calc
    start = atoms.get_positions()
    first, total, forces = [], [0.0] * len(calcs), [None] * len(calcs)
    for copy in copies:
        t0 = time.perf_counter()
        copy.get_forces()
        first.append(time.perf_counter() - t0)
    for k, move in enumerate(moves):
        for c, copy in enumerate(copies):
            copy.set_positions(start + move)
            t0 = time.perf_counter()
            forces[c] = copy.get_forces()
            total[c] += (time.perf_counter() - t0) if k >= warmup else 0.0
    return [(f, t / (len(moves) - warmup), x) for f, t, x in zip(first, total, forces)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="timed force calls per calculator")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls after the first")
    parser.add_argument("--families", nargs="+", help="row labels to measure (default: all), e.g. prior_only 'schnet delta'")
    args = parser.parse_args()
    torch.set_num_threads(1)
    atoms = frame_to_atoms(CGDataset.load(WATER), 0)
    atoms.calc = None
    rng = np.random.default_rng(0)
    moves = np.cumsum(rng.uniform(-0.02, 0.02, (args.warmup + args.calls, len(atoms), 3)), axis=0)
    rows = []
    for label, model in models().items():
        if args.families and label not in args.families:
            continue
        (_, eager_s, eager_f), (compile_s, compiled_s, compiled_f) = time_calls(
            [CGCalculator(model, compiled=False), CGCalculator(model, compiled=True)], atoms, moves, args.warmup)
        rows.append({"family": label, "eager_ms": 1e3 * eager_s, "compiled_ms": 1e3 * compiled_s,
                     "speedup": eager_s / compiled_s, "first_compiled_call_s": compile_s,
                     "max_dF_ev_per_A": float(np.abs(eager_f - compiled_f).max())})
        print(rows[-1], flush=True)
    stamp = dt.date.today().isoformat()
    machine = f"{platform.machine()} CPU, 1 thread, {platform.system()}, Python {platform.python_version()}, torch {torch.__version__}"
    (HERE / "compiled_model.json").write_text(json.dumps({"date": stamp, "machine": machine, "rows": rows}, indent=1))
    lines = [f"\n## Compiled models against eager ones in CGCalculator ({stamp})\n",
             (f"Machine: {machine}; command: `{shlex.join(['python', 'experiments/benchmarks/compiled_model.py', *sys.argv[1:]])}`. "
              "300-bead default water, float64, one force call = move every bead, "
              "`get_forces()` (Verlet list, graph, energy + forces); networks at their zoo sizes, LJ prior (9 Å).\n"),
             "| family | eager ms/call | compiled ms/call | eager / compiled | first compiled call (s) | largest force difference (eV/Å) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['eager_ms']:.2f} | {r['compiled_ms']:.2f} | {r['speedup']:.2f} | "
                     f"{r['first_compiled_call_s']:.2f} | {r['max_dF_ev_per_A']:.1e} |")
    with open(HERE / "RESULTS.md", "a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
