"""Force-matching fit time and peak memory against the number of training frames.

Each measurement runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its own.
SPC/E 1-bead is the embedded default dataset (800 frames); TraPPE-UA hexane 3-bead is made with
cgzoo's own ``generate`` and ``map`` when absent. Results are appended to ``RESULTS.md`` beside this script and written
as JSON. Usage::

    python experiments/benchmarks/fit_prior_scaling.py [--frames 25 50 100 200 400] [--workdir runs/bench]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SYSTEMS = {
    "spce-water 1-bead": dict(dataset=ROOT / "datasets" / "default" / "spce-water_1bead_com.h5"),
    "hexane 3-bead": dict(system="hexane-ua", n=140, mapping="hexane-ua_3bead_com.yaml", prod_ps=80, every=100),
}

MEASURE = r"""
import json, resource, sys, time
import numpy as np
from pathlib import Path
from cgzoo.fitting.spec import FrameStream
from cgzoo.fitting.force_matching import FMSettings, fit_force_matching
data, n = sys.argv[1], int(sys.argv[2])
stream = FrameStream(Path(data), np.arange(n), 9.0)
start = time.perf_counter()
prior, report = fit_force_matching(stream.topology.type_names, stream, FMSettings(cutoff=9.0))
wall = time.perf_counter() - start
print(json.dumps({"frames": n, "seconds": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "coefficients": report["n_coefficients"], "train_force_rmse": report["train_force_rmse"]}))
"""


def ensure_dataset(name: str, workdir: Path) -> Path:
    """Generate and map the benchmark dataset of ``name`` unless it already exists."""
    cfg = SYSTEMS[name]
    if "dataset" in cfg:
        return cfg["dataset"]
    out = workdir / f"{cfg['system']}.h5"
    if out.exists():
        return out
    raw = workdir / cfg["system"]
    subprocess.run([sys.executable, "-m", "cgzoo", "generate", cfg["system"], "--out", str(raw),
                    "--n-molecules", str(cfg["n"]), "--equil-ps", "20", "--prod-ps", str(cfg["prod_ps"]),
                    "--save-every-fs", str(cfg["every"]), "--quiet"], check=True)
    subprocess.run([sys.executable, "-m", "cgzoo", "map", "--top", str(raw),
                    "--mapping", str(ROOT / "datasets" / "mappings" / cfg["mapping"]), "--out", str(out), "--quiet"],
                   check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[25, 50, 100, 200, 400, 800])
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in SYSTEMS:
        data = ensure_dataset(name, args.workdir)
        rows = []
        for n in args.frames:
            proc = subprocess.run([sys.executable, "-c", MEASURE, str(data), str(n)], check=True, capture_output=True, text=True)
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(name, rows[-1], flush=True)
        results[name] = rows
    stamp = dt.datetime.now().strftime("%Y-%m-%d")
    machine = f"{platform.processor() or platform.machine()}, {platform.system()}, Python {platform.python_version()}"
    (HERE / "fit_prior_scaling.json").write_text(json.dumps({"date": stamp, "machine": machine, "results": results}, indent=1))
    lines = [f"\n## Force-matching fit scaling ({stamp})\n", f"Machine: {machine}; command: "
             f"`python experiments/benchmarks/fit_prior_scaling.py --frames {' '.join(map(str, args.frames))}`.\n",
             "Pairs, bonds, angles and dihedrals fitted jointly (cutoff 9 Å); each row a fresh process.\n",
             "| system | frames | fit time (s) | s / frame | peak RSS (MB) | coefficients |", "|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for r in rows:
            lines.append(f"| {name} | {r['frames']} | {r['seconds']:.2f} | {r['seconds'] / r['frames']:.4f} | "
                         f"{r['peak_rss_mb']:.0f} | {r['coefficients']} |")
    with (HERE / "RESULTS.md").open("a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
