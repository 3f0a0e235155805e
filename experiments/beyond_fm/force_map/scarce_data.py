"""Does a less noisy force map help when training data are scarce? (follow-up of run.py, which it reads)

With the full training split the force-matched priors of the basic and the optimized datasets agree
to four decimals (results.md): the least-squares fit averages the noise away. This script refits the
same spec (``fm_full.yaml``) on the hexane datasets with only ``max_frames`` training frames, and
scores each small-data prior on the test split by

* R² against the forces of the full-data prior (fitted on the basic dataset): the part of the
  estimation error that the noise of the target causes, with no target noise in the score;
* R² against the optimized dataset's raw test forces.

    python experiments/beyond_fm/force_map/scarce_data.py

Priors go to --data (default $CGZOO_BEYOND_FM_DATA/fmap/scarce); scarce_data.json and .md next to this script.
"""

from __future__ import annotations

import argparse
import sys
import time
import os
from pathlib import Path

import numpy as np
import yaml
from run import HERE, KINDS, ROOT, cgzoo  # the sibling script (its folder is on sys.path when run)

from cgzoo.data.dataset import load_topology
from cgzoo.data.splits import DEFAULT_SPLIT, block_split
from cgzoo.fitting.spec import FrameStream, prior_forces
from cgzoo.metrics import ForceErrors
from cgzoo.outputs import write_json_atomic
from cgzoo.priors.registry import load_prior

#: where the experiment's atomistic runs and derived data live (not in the repository)
DATA_ROOT = Path(os.environ.get("CGZOO_BEYOND_FM_DATA", "runs/beyond_fm"))

MAPPINGS = ("hexane-ua_2bead_com", "hexane-ua_3bead_com")
SIZES = (4, 16, 64)


def r2_scores(prior_dir: Path, full_dir: Path, data: Path, frames: np.ndarray, cutoff: float) -> dict[str, float]:
    """Test-split R² of a prior against the full-data prior's forces and against ``data``'s forces."""
    prior, full = load_prior(prior_dir).double(), load_prior(full_dir).double()
    stream = FrameStream(data, frames, cutoff)
    vs_full, vs_data = ForceErrors(), ForceErrors()
    for graph, forces in stream():
        predicted = prior_forces(prior, graph)
        vs_full.update(predicted, prior_forces(full, graph))
        vs_data.update(predicted, forces)
    return {"r2_vs_full_data_prior": vs_full.total().r2, "r2_vs_optimized_forces": vs_data.total().r2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT / "fmap" / "scarce")
    parser.add_argument("--datasets", type=Path, default=DATA_ROOT / "fmap", help="run.py's --data")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    began = time.time()
    base = yaml.safe_load((ROOT / "datasets" / "priors" / "fm_full.yaml").read_text())
    cutoff = float(base["terms"][0]["cutoff"])
    results: dict[str, dict] = {}
    for mapping in MAPPINGS:
        full = args.datasets / f"prior_{mapping}_basic"
        optimized = args.datasets / f"{mapping}_optimized.h5"
        test = block_split(load_topology(optimized)[2], **DEFAULT_SPLIT)["test"]
        for size in SIZES:
            spec = args.data / f"fm_full_{size}frames.yaml"
            spec.write_text(yaml.safe_dump({**base, "max_frames": size}))
            for kind in KINDS:
                out = args.data / f"prior_{mapping}_{kind}_{size}frames"
                cgzoo("fit-prior", "--data", str(args.datasets / f"{mapping}_{kind}.h5"), "--prior", str(spec),
                      "--out", str(out), "--no-plots", "--quiet", "--overwrite")
                results.setdefault(mapping, {}).setdefault(str(size), {})[kind] = r2_scores(
                    out, full, optimized, test, cutoff)
    record = {"command": " ".join(["python", *sys.argv]), "wall_s": time.time() - began, "results": results}
    write_json_atomic(HERE / "scarce_data.json", record)
    lines = ["# Scarce training data: priors fitted on few frames of basic vs optimized forces", "",
             f"command: `{record['command']}`, wall time {record['wall_s'] / 60:.1f} min; test split scores", "",
             "| mapping | training frames | fitted on | R² vs full-data prior | R² vs optimized forces |",
             "|---|---|---|---|---|"]
    for mapping, by_size in results.items():
        for size, by_kind in by_size.items():
            for kind, r2 in by_kind.items():
                lines.append(f"| {mapping} | {size} | {kind} | {r2['r2_vs_full_data_prior']:.4f} | "
                             f"{r2['r2_vs_optimized_forces']:.4f} |")
    (HERE / "scarce_data.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
