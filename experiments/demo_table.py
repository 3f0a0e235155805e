"""Print the main job's comparison: held-out force RMSE of the priors and of prior only / ML only / Δ SchNet.

Reads the fit-prior reports and the test metrics the Lightning CSV logger wrote under the demo's
output directory (``experiments/demo.sh``).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def test_rmse(root: Path) -> float:
    """The last ``test/force_rmse`` logged under ``root`` (kcal/mol/Å)."""
    files = sorted(root.glob("csv/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    for path in reversed(files):
        values = [row["test/force_rmse"] for row in csv.DictReader(path.open()) if row.get("test/force_rmse")]
        if values:
            return float(values[-1])
    raise SystemExit(f"no test/force_rmse under {root}")


def main(out: Path) -> None:
    fm = json.loads((out / "prior_fm" / "report.json").read_text())["errors"]["test"]
    lj = json.loads((out / "prior_lj" / "report.json").read_text())["errors"]["test"]
    rows = [("reference forces (RMS)", fm["reference_force_rms"]),
            ("prior: Lennard-Jones, fitted", lj["force_rmse"]),
            ("prior: force-matched spline (prior only)", test_rmse(out / "prior_only")),
            ("SchNet alone (ML only)", test_rmse(out / "schnet_ml_only")),
            ("force-matched prior + SchNet (Δ)", test_rmse(out / "schnet_delta"))]
    print("\nheld-out (test split) force RMSE, kcal/mol/Å per component, CG SPC/E water")
    for label, value in rows:
        print(f"  {label:<44}{value:8.4f}")
    print(f"\nprior plots and LAMMPS/GROMACS tables: {out}/prior_fm; checkpoints: {out}/schnet_*/checkpoints")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
