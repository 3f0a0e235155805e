"""Validate the built-in liquids: run each at 298.15 K and 1 atm and compare the NPT density with literature.

Usage (from the repository root)::

    python datasets/validate_densities.py [--systems spce-water ...] [--out-root runs/validate] [--threads 2]

Each system runs through :func:`cgzoo.generate.run_generate` with its default size and the
equilibration length below, and a short production (to exercise the whole pipeline). Results
(density mean ± SE, deviations from the model's published value and from experiment, ns/day,
wall time, exact call) go to ``datasets/validation_densities.json`` and are printed as the
Markdown table that ``datasets/README.md`` quotes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cgzoo.generate import SYSTEMS, run_generate
from cgzoo.units import ATM_TO_BAR

#: Equilibration (NPT) length per system, ps: long enough for a density SE well under 1 %.
EQUIL_PS = {"spce-water": 150.0, "methanol-ua": 250.0, "hexane-ua": 150.0, "cyclohexane-ua": 300.0}
PROD_PS = 10.0
TEMPERATURE = 298.15
RESULTS = Path(__file__).with_name("validation_densities.json")


def validate(system: str, out_root: Path, threads: int | None) -> dict:
    """Run one system and return its density comparison."""
    spec = SYSTEMS[system]
    kwargs = {
        "n_molecules": spec.default_n_molecules,
        "temperature": TEMPERATURE,
        "pressure_bar": ATM_TO_BAR,
        "equil_ps": EQUIL_PS[system],
        "prod_ps": PROD_PS,
        "save_every_fs": 500.0,
        "timestep_fs": 2.0,
        "seed": 0,
        "threads": threads,
        "overwrite": True,
    }
    out = out_root / system
    started = time.perf_counter()
    run_generate(system, out, **kwargs)
    wall_s = time.perf_counter() - started
    density = json.loads((out / "density.json").read_text())["density_g_cm3"]
    topology = json.loads((out / "topology.json").read_text())
    simulated_ps = float((out / "log.csv").read_text().strip().splitlines()[-1].split(",")[2])
    mean, sem = density["mean"], density["sem"]
    arguments = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())

    def deviation(reference: float | None) -> float | None:
        return None if reference is None else 100.0 * (mean - reference) / reference

    return {
        "system": system,
        "force_field": spec.force_field,
        "citation": spec.citation,
        "n_molecules": spec.default_n_molecules,
        "cutoff_A": topology["cutoff_A"],
        "equil_ps": EQUIL_PS[system],
        "density_g_cm3": mean,
        "sem_g_cm3": sem,
        "sem_percent": 100.0 * sem / mean,
        "model_density": spec.model_density,
        "model_density_source": spec.model_density_source,
        "deviation_model_percent": deviation(spec.model_density),
        "experimental_density": spec.experimental_density,
        "deviation_experiment_percent": deviation(spec.experimental_density),
        "simulated_ps": simulated_ps,
        "wall_s": wall_s,
        "ns_per_day": simulated_ps * 1e-3 / (wall_s / 86400.0),
        "call": f"run_generate({system!r}, {str(out)!r}, {arguments})",
    }


def table(rows: list[dict]) -> str:
    """Markdown table of the results."""
    lines = [
        "| system | force field | N | cutoff (Å) | NPT (ps) | ρ sim (g/cm³) | ρ model lit. | Δ model | ρ exp. | Δ exp. | ns/day |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        model = "n/a" if r["model_density"] is None else f"{r['model_density']:.3f}"
        d_model = "n/a" if r["deviation_model_percent"] is None else f"{r['deviation_model_percent']:+.1f} %"
        lines.append(
            f"| {r['system']} | {r['force_field']} | {r['n_molecules']} | {r['cutoff_A']:.1f} | {r['equil_ps']:.0f} "
            f"| {r['density_g_cm3']:.4f} ± {r['sem_g_cm3']:.4f} | {model} | {d_model} "
            f"| {r['experimental_density']:.3f} | {r['deviation_experiment_percent']:+.1f} % | {r['ns_per_day']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=list(EQUIL_PS), choices=list(EQUIL_PS))
    parser.add_argument("--out-root", type=Path, default=Path("runs/validate"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    previous = {r["system"]: r for r in json.loads(RESULTS.read_text())} if RESULTS.exists() else {}
    for system in args.systems:
        previous[system] = validate(system, args.out_root, args.threads)
        rows = [previous[s] for s in EQUIL_PS if s in previous]
        RESULTS.write_text(json.dumps(rows, indent=1) + "\n")
    print(table([previous[s] for s in EQUIL_PS if s in previous]))


if __name__ == "__main__":
    main()
