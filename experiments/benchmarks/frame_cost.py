"""What a saved frame costs in an engine run: evaluated on the model, or on the tables the engine integrates.

An engine run (LAMMPS, OpenMM) evaluates every saved frame in torch for the stability guard and the log.
On the default dataset's 300 CG water beads, for the force-matched prior and a Δ pair_mlp of the zoo's size
(untrained: it costs what a trained one does), this measures (a) ms per frame evaluation (energy, forces,
stress; one thread) of the model itself and of its engine tables (:meth:`EngineModel.torch_model`, what
``cgzoo simulate`` evaluates when tables hold the whole model), and (b) the wall time of a 5000-step LAMMPS
NVT run (``cgzoo simulate``, one thread, start-up included) saving a frame every 10, 50 and 500 steps.
Writes ``frame_cost.json`` beside this script and appends a section to ``RESULTS.md``. Usage::

    python experiments/benchmarks/frame_cost.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cgzoo.data.start import load_start  # noqa: E402
from cgzoo.fitting.spec import fit_prior  # noqa: E402
from cgzoo.md import CGCalculator, SimulationSettings, simulate  # noqa: E402
from cgzoo.md.integrators import prepare_engine  # noqa: E402
from cgzoo.models import CGModel, build_network  # noqa: E402

DEFAULT = ROOT / "datasets" / "default" / "spce-water_1bead_com.h5"
HERE = Path(__file__).parent
STEPS, SAVE_EVERY, REPEATS = 5000, (10, 50, 500), 40


def models() -> dict[str, CGModel]:
    """The force-matched prior (fitted on 50 training frames) and a Δ pair_mlp of the zoo's size on it."""
    spec = yaml.safe_load((ROOT / "datasets" / "priors" / "fm_pair.yaml").read_text())
    prior, _ = fit_prior(DEFAULT, {**spec, "max_frames": 50}, progress=lambda m: None)
    zoo = yaml.safe_load((ROOT / "models" / "pair_mlp.yaml").read_text())["model"]["network_args"]
    torch.manual_seed(0)
    net = build_network("pair_mlp", prior.type_names, **zoo)
    return {"prior_only": CGModel(prior, None, mode="prior_only"), "pair_mlp Δ": CGModel(prior, net, mode="delta")}


def ms_per_frame(calc: CGCalculator) -> float:
    """Mean ms of one energy + forces + stress evaluation on slightly displaced frames (first call excluded)."""
    atoms, _ = load_start(f"{DEFAULT}@0")
    atoms.calc = calc
    atoms.get_stress()
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(REPEATS):
        atoms.set_positions(atoms.get_positions() + rng.normal(0.0, 0.01, (len(atoms), 3)))
        atoms.get_stress()
    return (time.perf_counter() - started) / REPEATS * 1e3


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for name, model in models().items():
        atoms, topology = load_start(f"{DEFAULT}@0")
        calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
        _, engine = prepare_engine(calc, atoms, topology)
        tables = CGCalculator(engine.torch_model(), topology["bonds"], topology["angles"], topology["dihedrals"],
                              compiled=False)
        row = {"model": name, "model_ms_per_frame": ms_per_frame(calc), "tables_ms_per_frame": ms_per_frame(tables),
               "lammps_run_s": {}}
        for every in SAVE_EVERY:
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                simulate(model, f"{DEFAULT}@0", Path(tmp) / "run", SimulationSettings(
                    ensemble="nvt", timestep_fs=2.0, steps=STEPS, save_every=every, engine="lammps"),
                    progress=False, threads=1)
                row["lammps_run_s"][every] = time.perf_counter() - started
        rows.append(row)
        print(row, flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result = {"date": dt.date.today().isoformat(), "machine": machine, "steps": STEPS, "rows": rows}
    (HERE / "frame_cost.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"## Saved frames in engine runs: the model against its tables ({result['date']})", "",
             f"Machine: {machine}, one thread; command: `python experiments/benchmarks/frame_cost.py`. 300 CG water "
             f"beads (default dataset); per-frame cost of energy, forces and stress in torch; LAMMPS NVT runs of "
             f"{STEPS} steps at 2 fs through `cgzoo simulate` (start-up included), which evaluate each saved frame "
             "on the tables.", "",
             "| model | model ms/frame | tables ms/frame | ratio | " + " | ".join(f"run s, every {e}" for e in SAVE_EVERY)
             + " |", "|---|---|---|---|" + "---|" * len(SAVE_EVERY)]
    for r in rows:
        runs = " | ".join(f"{r['lammps_run_s'][e]:.1f}" for e in SAVE_EVERY)
        lines.append(f"| {r['model']} | {r['model_ms_per_frame']:.1f} | {r['tables_ms_per_frame']:.1f} | "
                     f"{r['model_ms_per_frame'] / r['tables_ms_per_frame']:.1f}× | {runs} |")
    with (HERE / "RESULTS.md").open("a") as f:
        f.write("\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
