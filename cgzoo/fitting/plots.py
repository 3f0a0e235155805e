"""PNG plots of every prior term: energy and force against the coordinate, with the sampled range shaded.

Pair plots also show the intermolecular g(r) of the training frames (:func:`cgzoo.observables.structure.rdf`,
the g(r) ``cgzoo evaluate`` reports), so a reader can check that the potential has its repulsive core
where g(r) rises and a well near the first peak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cgzoo.priors.export import tabulate  # noqa: E402

#: per term kind: the coordinate's axis label and the force's (the derivative along that coordinate)
AXES = {"pair": ("r (Å)", "F = −dU/dr (kcal/mol/Å)"), "bond": ("r (Å)", "F = −dU/dr (kcal/mol/Å)"),
        "angle": ("θ (deg)", "−dU/dθ (kcal/mol/rad)"), "dihedral": ("φ (deg)", "−dU/dφ (kcal/mol/rad)")}


def plot_terms(prior, keys: dict[str, list[str]], type_names: list[str], sampled: dict[str, list[float]],
               out_dir: str | Path, rdfs: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> list[Path]:
    """One PNG per term kind and type key (energy above, force below); returns the written files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, kind_keys in keys.items():
        table = tabulate(prior, kind, kind_keys, type_names)
        if table is None:
            continue
        for key in kind_keys:
            x = table.grid(key)[0]
            if kind == "pair":
                lo = sampled.get(f"pair {key}", [x[0]])[0]
                x = np.linspace(max(0.5 * x[0], lo - 0.5), x[-1], 600)
            energy, force = table.evaluate(key, x)
            xs = np.degrees(x) if kind in ("angle", "dihedral") else x
            fig, (ax_u, ax_f) = plt.subplots(2, 1, sharex=True, figsize=(6, 6))
            rng = sampled.get(f"{kind} {key}")
            inside = (x >= rng[0]) & (x <= rng[1]) if rng else np.ones_like(x, dtype=bool)
            low = float(energy[inside].min()) if inside.any() else float(energy.min())
            high = float(energy[inside].max()) if inside.any() else float(np.percentile(energy, 90))
            ax_u.plot(xs, energy, color="C0")
            ax_u.set_ylim(low - 0.1 * (high - low) - 0.1, high + 0.1 * (high - low) + 0.1)
            ax_u.set_ylabel("U (kcal/mol)")
            ax_f.plot(xs, force, color="C3")
            fmax = float(np.abs(force[inside]).max()) if inside.any() else float(np.abs(force).max())
            ax_f.set_ylim(-1.1 * fmax - 0.1, 1.1 * fmax + 0.1)
            ax_f.set_xlabel(AXES[kind][0])
            ax_f.set_ylabel(AXES[kind][1])
            ax_f.axhline(0.0, color="k", lw=0.5)
            ax_u.axhline(0.0, color="k", lw=0.5)
            if rng:
                lo, hi = (np.degrees(rng) if kind in ("angle", "dihedral") else rng)
                for ax in (ax_u, ax_f):
                    ax.axvspan(lo, hi, color="0.9", zorder=0, label="sampled range")
                ax_u.legend(loc="lower right")
            if kind == "pair" and rdfs and key in rdfs:
                r, g = rdfs[key]
                keep = r >= xs[0]
                twin = ax_u.twinx()
                twin.plot(r[keep], g[keep], color="C2", lw=1, label="intermolecular g(r), training frames")
                twin.set_ylabel("g(r)", color="C2")
                twin.legend(loc="upper right")
            ax_f.set_xlim(xs[0], xs[-1])
            ax_u.set_title(f"{kind} {key}")
            fig.tight_layout()
            path = out_dir / f"{kind}_{key}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
    return written


def sampled_ranges(report: dict[str, Any]) -> dict[str, list[float]]:
    """Sampled coordinate range of each term across the fit reports (widest over terms)."""
    out: dict[str, list[float]] = {}
    for term in report.get("terms", []):
        for name, info in (term.get("terms") or {}).items():
            lo, hi = info["sampled_range"]
            old = out.get(name, [lo, hi])
            out[name] = [min(lo, old[0]), max(hi, old[1])]
    return out
