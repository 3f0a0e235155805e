"""``cgzoo evaluate`` on the command line: parses arguments and calls :func:`cgzoo.observables.report.evaluate`.

Kept free of heavy imports (torch, matplotlib) so building the ``cgzoo`` parser stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cgzoo.errors import InputError
from cgzoo.units import PS_TO_FS


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cgzoo evaluate`` on the CLI's sub-parsers."""
    p = subparsers.add_parser("evaluate", help="compare CG simulation runs with the reference dataset "
                                               "(g(r), bonded and triplet distributions, density, pressure, diffusion)")
    p.add_argument("--reference", required=True, type=Path, help="reference CG dataset (.h5)")
    p.add_argument("--run", required=True, action="append", type=_label_and_dir, metavar="LABEL=RUN_DIR",
                   help="a cgzoo simulate output directory (repeat for several runs; LABEL defaults to the folder name)")
    p.add_argument("--out", required=True, type=Path, help="output directory: metrics.json/.csv, report.md, plots/")
    p.add_argument("--split", choices=["all", "test"], default="all",
                   help="reference frames: all, or the held-out test split of training (default: all)")
    p.add_argument("--r-max", type=float, default=None, help="g(r) range, Å (default: half the smallest cell width)")
    p.add_argument("--bins", type=int, default=200, help="g(r) bins (default: %(default)s)")
    p.add_argument("--equil-ps", type=float, default=0.0, help="discard the first ps of every run (default: %(default)s)")
    p.add_argument("--reference-pressure", type=float, default=None,
                   help="reference pressure, bar (datasets do not store one); runs are scored by ΔP in bar")
    p.add_argument("--msd-window", type=float, nargs=2, default=None, metavar=("FROM_PS", "TO_PS"),
                   help="MSD lag window D is fitted over for the reference and every run, ps "
                        "(default: 20–80 %% of the reference's longest lag)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (it is drawn only when stderr is a terminal)")
    p.set_defaults(func=_cmd_evaluate)
    return p


def _label_and_dir(text: str) -> tuple[str, Path]:
    """Parse ``LABEL=RUN_DIR`` (or a bare ``RUN_DIR``, labelled by its folder name)."""
    label, sep, path = text.partition("=")
    if not sep:
        return Path(text).name, Path(text)
    if not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=RUN_DIR, got {text!r}")
    return label, Path(path)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from cgzoo.observables.report import evaluate

    runs: dict[str, Path] = {}
    for label, path in args.run:
        if label in runs:
            raise InputError(None, f"run label {label!r} is given twice")
        runs[label] = path
    metrics = evaluate(args.reference, runs, args.out, split=args.split, r_max=args.r_max, bins=args.bins,
                       equil_fs=args.equil_ps * PS_TO_FS, reference_pressure_bar=args.reference_pressure,
                       msd_window_fs=None if args.msd_window is None else (args.msd_window[0] * PS_TO_FS,
                                                                            args.msd_window[1] * PS_TO_FS),
                       overwrite=args.overwrite, show_progress=False if args.quiet else None)
    for label, m in metrics["runs"].items():
        print(f"{label:<16} {m['outcome'] if m['stable'] else m['outcome'].upper():<10} frames {m['n_frames']:>5}  "
              f"g(r) RMS err {_fmt(m['rdf_error'])}  density rel err {_fmt(m['density_rel_error'])}  "
              f"D rel err {_fmt(m['diffusion_rel_error'])}")
    print(f"wrote {args.out}/report.md, metrics.json, metrics.csv, plots/")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3g}"
