"""Fit a prior to a CG dataset from a YAML spec, on the training split only, and report held-out errors.

A spec lists terms applied in order; each fitted term sees the reference forces minus the
forces of the terms before it (so force matching after a Boltzmann-inverted bonded prior fits
the non-bonded residual)::

    split: {fractions: [0.8, 0.1, 0.1], blocks: 10, gap: 2, seed: 0}
    max_frames: 200            # optional: evenly thinned training frames
    terms:
      - fit: boltzmann_inversion
        bonds: harmonic        # harmonic | table | none
        angles: table
        dihedrals: none
      - fit: force_matching    # options: cgzoo.fitting.force_matching.FMSettings
        cutoff: 9.0
        pair_spacing: 0.2
        bonds: false
      - fit: least_squares     # an analytic prior fitted to the forces (L-BFGS on its parameters)
        class_path: lennard_jones
        init_args: {cutoff: 9.0}
      - class_path: soft_repulsion   # no `fit`: a fixed prior, included as given
        init_args: {...}
    pressure:                  # optional: a pressure-consistent prior (cgzoo.fitting.pressure)
      target_bar: 1.0          # required: the reference pressure at the dataset's density
      method: virial           # virial: constraint on the last term (force matching); ramp: a fitted A(1 − r/r_c) term
      cutoff: 9.0              # ramp range r_c (Å); default: the spec's largest pair cutoff

Analytic pair priors given without ``params``/``default`` start from the data: σ at the 1st
percentile of sampled pair distances, ε = k_BT/2.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from cgzoo.data.dataset import CGDataset, iter_frames, load_topology
from cgzoo.data.splits import DEFAULT_SPLIT, block_split
from cgzoo.errors import FitError, InputError
from cgzoo.fitting.boltzmann import fit_boltzmann
from cgzoo.fitting.force_matching import FMSettings, fit_force_matching
from cgzoo.fitting.least_squares import fit_least_squares
from cgzoo.fitting.pressure import VirialConstraint, frame_pressures_bar, ramp_amplitude
from cgzoo.forces import energy_derivatives
from cgzoo.metrics import ForceErrors
from cgzoo.neighbors import CGGraph, TopologyCache, batch_graph
from cgzoo.priors.base import NoPrior, Prior, SumPrior
from cgzoo.priors.registry import build_prior, prior_class
from cgzoo.priors.terms import PairPrior
from cgzoo.progress import progress_bar
from cgzoo.schema import Strict, read_yaml_file, validate
from cgzoo.terms import canonical_key
from cgzoo.units import kT

FIT_METHODS = ("force_matching", "boltzmann_inversion", "least_squares")


@dataclass
class FrameStream:
    """Frames of one dataset file as CG graphs, re-readable (each call streams from disk again)."""

    path: Path
    frames: np.ndarray
    cutoff: float

    def __post_init__(self) -> None:
        self.topology, self.temperature, self.n_frames = load_topology(self.path)
        top = self.topology
        self.cache = TopologyCache(top.n_beads, top.bonds, top.molecule_ids)

    def graph(self, pos: np.ndarray, box: np.ndarray, requires_grad: bool = False) -> CGGraph:
        """The graph of one frame (float64)."""
        top = self.topology
        return batch_graph(pos[None], box[None], top.bead_types, self.cache, self.cutoff, top.bonds, top.angles,
                           top.dihedrals, dtype=torch.float64, requires_grad=requires_grad)

    def __call__(self) -> Iterator[tuple[CGGraph, np.ndarray]]:
        for pos, frc, box in iter_frames(self.path, self.frames):
            yield self.graph(pos, box), frc.astype(np.float64)


def with_progress(frames: Callable[[], Iterator[Any]], total: int, desc: str,
                  show: bool | None) -> Callable[[], Iterator[Any]]:
    """``frames`` drawing a bar of its ``total`` frames at every pass over them, the passes numbered (``show``:
    :func:`cgzoo.progress.progress_bar`)."""
    passes = itertools.count(1)

    def run() -> Iterator[Any]:
        yield from progress_bar(frames(), total=total, desc=f"{desc} pass {next(passes)}", unit="frame", show=show)

    return run


def prior_forces(prior: Prior, graph: CGGraph) -> np.ndarray:
    """Forces (N,3) of ``prior`` on the beads of ``graph`` (kcal/mol/Å)."""
    return energy_derivatives(prior, graph)["forces"].detach().numpy()


def residual_stream(stream: FrameStream, fixed: list[Prior]) -> Callable[[], Iterator[tuple[CGGraph, np.ndarray]]]:
    """Frames with the forces of the already-fitted ``fixed`` priors subtracted from the reference."""
    total = SumPrior(fixed).double() if fixed else None

    def frames() -> Iterator[tuple[CGGraph, np.ndarray]]:
        for graph, forces in stream():
            yield graph, forces if total is None else forces - prior_forces(total, graph)

    return frames


def _data_initial_params(prior_cls: type[PairPrior], stream: FrameStream, temperature: float) -> dict[str, float]:
    """Starting parameters of an analytic pair prior from sampled distances (see module docstring)."""
    distances = []
    for k, (graph, _) in enumerate(stream()):
        r = torch.linalg.norm(graph.edge_vectors(), dim=-1)
        distances.append(r[graph.edge_sep == 0].numpy())
        if k >= 4:
            break
    if not sum(len(d) for d in distances):
        raise FitError(f"least squares: no bead pairs within the cutoff {stream.cutoff:g} Å to start {prior_cls.__name__} from")
    sigma = float(np.percentile(np.concatenate(distances), 1.0))
    guesses = {"sigma": sigma, "epsilon": kT(temperature) / 2, "n": 12.0, "m": 6.0,
               "D": kT(temperature) / 2, "alpha": 2.0 / sigma, "r0": 1.12 * sigma}
    missing = [f for f in prior_cls.fields if f not in guesses]
    if missing:
        raise FitError(f"least squares: give initial parameters for {prior_cls.__name__} ({', '.join(missing)})")
    return {f: guesses[f] for f in prior_cls.fields}


def force_errors(prior: Prior, stream: FrameStream, show_progress: bool | None = False,
                 desc: str = "force errors") -> dict[str, Any]:
    """Force RMSE (kcal/mol/Å, per component) of ``prior`` on ``stream``'s frames, overall and per bead type."""
    names = stream.topology.type_names
    errors = ForceErrors(len(names))
    for graph, forces in progress_bar(stream(), total=len(stream.frames), desc=desc, unit="frame", show=show_progress):
        errors.update(prior_forces(prior, graph), forces, stream.topology.bead_types)
    total = errors.total()
    if total is None:
        return {"frames": 0}
    return {
        "frames": int(len(stream.frames)),
        "force_rmse": total.rmse,
        "reference_force_rms": total.reference_rms,
        "per_type_force_rmse": {n: t.rmse for n, t in zip(names, errors.per_type()) if t is not None},
    }


class _InitArgs(BaseModel):
    """A term's ``init_args``: the prior class checks its own arguments; the shared pair-prior ones are checked here."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)
    cutoff: float | None = Field(None, gt=0)
    r_switch: float | None = Field(None, ge=0)
    exclude: int | None = Field(None, ge=0)
    smoothing: str | None = None


class _SplitSpec(Strict):
    """``split``: the time-block split (:func:`cgzoo.data.splits.block_split` checks that it works for the data)."""

    fractions: list[Annotated[float, Field(gt=0)]] = Field(list(DEFAULT_SPLIT["fractions"]), min_length=3, max_length=3)
    blocks: int = Field(DEFAULT_SPLIT["n_blocks"], ge=3)
    gap: int = Field(DEFAULT_SPLIT["gap"], ge=0)
    seed: int = Field(DEFAULT_SPLIT["seed"], ge=0)


class _ForceMatchingTerm(Strict):
    """``fit: force_matching``: the options of :class:`~cgzoo.fitting.force_matching.FMSettings`."""

    fit: Literal["force_matching"]
    pair: bool = FMSettings.pair
    bonds: bool = FMSettings.bonds
    angles: bool = FMSettings.angles
    dihedrals: bool = FMSettings.dihedrals
    cutoff: float = Field(FMSettings.cutoff, gt=0)
    pair_spacing: float = Field(FMSettings.pair_spacing, gt=0)
    bond_spacing: float = Field(FMSettings.bond_spacing, gt=0)
    angle_spacing_deg: float = Field(FMSettings.angle_spacing_deg, gt=0)
    dihedral_spacing_deg: float = Field(FMSettings.dihedral_spacing_deg, gt=0)
    exclude: int = Field(FMSettings.exclude, ge=0)
    intramolecular: bool = FMSettings.intramolecular
    smoothing: float = Field(FMSettings.smoothing, ge=0)
    ridge: float = Field(FMSettings.ridge, ge=0)
    r_min: float = Field(FMSettings.r_min, ge=0)

    @model_validator(mode="after")
    def _range(self) -> "_ForceMatchingTerm":
        """The pair range r_min…cutoff must hold at least one knot interval."""
        if self.pair and self.r_min + self.pair_spacing > self.cutoff:
            raise ValueError(f"r_min + pair_spacing ({self.r_min:g} + {self.pair_spacing:g}) exceeds cutoff {self.cutoff:g}")
        return self


class _BoltzmannTerm(Strict):
    """``fit: boltzmann_inversion``: how each bonded kind is inverted, and the histogram bins."""

    fit: Literal["boltzmann_inversion"]
    bonds: Literal["harmonic", "table", "none"] = "harmonic"
    angles: Literal["harmonic", "table", "none"] = "table"
    dihedrals: Literal["table", "none"] = "none"
    bins: int = Field(100, ge=2)


class _LeastSquaresTerm(Strict):
    """``fit: least_squares``: an analytic prior fitted to the residual forces with L-BFGS."""

    fit: Literal["least_squares"]
    class_path: str = Field(min_length=1)
    init_args: _InitArgs | None = None
    frames: int = Field(20, gt=0)
    max_iter: int = Field(100, gt=0)


class _FixedTerm(Strict):
    """No ``fit``: a prior included as given."""

    class_path: str = Field(min_length=1)
    init_args: _InitArgs | None = None


class _UnknownFitTerm(BaseModel):
    """A term whose ``fit`` is none of the methods; validating it reports the allowed ones."""

    fit: Literal[FIT_METHODS]


def _term_kind(term: Any) -> str | None:
    """The union tag of a term: its ``fit`` method, ``fixed`` without one, ``unknown`` otherwise."""
    if isinstance(term, BaseModel):  # serialising a validated spec
        term = dict(term)
    if not isinstance(term, dict):
        return None
    fit = term.get("fit")
    return "fixed" if fit is None else fit if fit in FIT_METHODS else "unknown"


_Term = Annotated[
    Annotated[_ForceMatchingTerm, Tag("force_matching")] | Annotated[_BoltzmannTerm, Tag("boltzmann_inversion")]
    | Annotated[_LeastSquaresTerm, Tag("least_squares")] | Annotated[_FixedTerm, Tag("fixed")]
    | Annotated[_UnknownFitTerm, Tag("unknown")],
    Discriminator(_term_kind, custom_error_type="term_type", custom_error_message="a term must be a mapping of keys to values"),
]


class _PressureSpec(Strict):
    """``pressure``: make the prior's virial pressure on the training frames the reference's (:mod:`cgzoo.fitting.pressure`)."""

    target_bar: float = Field(allow_inf_nan=False)
    method: Literal["virial", "ramp"] = "virial"
    cutoff: float | None = Field(None, gt=0)


class PriorSpecFile(Strict):
    """A fit-prior spec file (see the module docstring)."""

    split: _SplitSpec | None = None
    max_frames: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, gt=0)
    terms: list[_Term] = Field(min_length=1)
    pressure: _PressureSpec | None = None

    @model_validator(mode="after")
    def _pressure_fits_terms(self) -> "PriorSpecFile":
        """The virial constraint acts on a last force-matching term that fits pairs or bonds; a ramp needs a cutoff."""
        p = self.pressure
        if p is None:
            return self
        last = self.terms[-1]
        if p.method == "virial" and not (isinstance(last, _ForceMatchingTerm) and (last.pair or last.bonds)):
            raise ValueError("pressure method virial constrains the last term, which must be a force_matching term "
                             "fitting pairs or bonds")
        if p.method == "ramp" and p.cutoff is None and not any(_term_cutoff(t.model_dump()) for t in self.terms):
            raise ValueError("pressure method ramp needs a cutoff (no term has a pair cutoff to take it from)")
        return self


class SpecError(InputError, ValueError):
    """A spec term the prior class rejects when it is built; the message names the term."""


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read and check a fit-prior spec file against :class:`PriorSpecFile`; the keys it gives, as plain data."""
    spec = validate(PriorSpecFile, read_yaml_file(path, "prior spec"), path)
    return spec.model_dump(exclude_unset=True)


def _build_term(k: int, term: dict[str, Any], args: dict[str, Any], type_names: list[str]) -> Prior:
    """Build term ``k``'s prior; the class's own argument checks become one line naming the term."""
    try:
        return build_prior({"class_path": term["class_path"], "init_args": args}, type_names)
    except (ValueError, TypeError, KeyError) as exc:
        problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise SpecError(None, f"terms[{k}] ({term['class_path']}): {problem}") from None


def _term_cutoff(term: dict[str, Any]) -> float:
    if term.get("fit") == "force_matching":
        return float(term.get("cutoff", FMSettings.cutoff)) if term.get("pair", True) else 0.0
    if term.get("fit") == "boltzmann_inversion":
        return 0.0
    return float((term.get("init_args") or {}).get("cutoff", 0.0) or 0.0)


def spec_splits(spec: dict[str, Any], n_frames: int) -> dict[str, np.ndarray]:
    """The spec's time-block split, with the training frames thinned evenly to ``max_frames`` when given."""
    opts = spec.get("split") or {}
    splits = block_split(n_frames, tuple(opts.get("fractions", DEFAULT_SPLIT["fractions"])),
                         n_blocks=int(opts.get("blocks", DEFAULT_SPLIT["n_blocks"])),
                         gap=int(opts.get("gap", DEFAULT_SPLIT["gap"])), seed=int(opts.get("seed", DEFAULT_SPLIT["seed"])))
    train = splits["train"]
    if spec.get("max_frames") and len(train) > int(spec["max_frames"]):
        splits["train"] = train[np.linspace(0, len(train) - 1, int(spec["max_frames"])).round().astype(int)]
    return splits


def fit_prior(data: str | Path, spec: dict[str, Any], progress: Callable[[str], None] = print,
              show_progress: bool | None = False) -> tuple[Prior, dict[str, Any]]:
    """Fit every term of ``spec`` on the training split of ``data``; return the summed prior and the report.

    ``progress`` receives a line per term; ``show_progress`` draws a bar of every pass over the frames
    (:func:`cgzoo.progress.progress_bar`: None on a terminal only, True always, False never).
    """
    _, temperature, n_frames = load_topology(data)
    temperature = float(spec.get("temperature") or temperature or math.nan)
    splits = spec_splits(spec, n_frames)
    train = splits["train"]
    cutoff = max([_term_cutoff(t) for t in spec["terms"]] + [float((spec.get("pressure") or {}).get("cutoff") or 0.0)])
    stream = FrameStream(Path(data), train, cutoff)
    type_names = stream.topology.type_names
    fitted: list[Prior] = []
    reports: list[dict[str, Any]] = []
    for k, term in enumerate(spec["terms"]):
        method = term.get("fit")
        progress(f"term {k}: {method or 'fixed ' + term['class_path']}")
        frames = with_progress(residual_stream(stream, fitted), len(train), f"term {k} {method or 'fixed'}", show_progress)
        if method == "force_matching":
            constraint = _virial_constraint(spec, fitted, temperature) if k == len(spec["terms"]) - 1 else None
            prior, report = fit_force_matching(type_names, frames, FMSettings(**{k2: v for k2, v in term.items() if k2 != "fit"}),
                                               constraint)
            fitted.extend(prior.priors)
        elif method == "boltzmann_inversion":
            if not math.isfinite(temperature):
                raise FitError("Boltzmann inversion needs a temperature (dataset has none; set 'temperature' in the spec)")
            options = {k2: v for k2, v in term.items() if k2 != "fit"}
            passes = with_progress(stream, len(train), f"term {k} {method}", show_progress)
            priors, report = fit_boltzmann(type_names, (g for g, _ in passes()), temperature, **options)
            fitted.extend(priors)
        else:
            args = dict(term.get("init_args") or {})
            cls = prior_class(term["class_path"])
            if method == "least_squares" and issubclass(cls, PairPrior) and "params" not in args and "default" not in args:
                args.update(params={}, default=_data_initial_params(cls, stream, temperature))
            prior = _build_term(k, term, args, type_names)
            if method == "least_squares":
                stride = max(1, len(train) // int(term.get("frames", 20)))
                subset = list(itertools.islice(frames(), 0, None, stride))
                report = fit_least_squares(prior, subset, int(term.get("max_iter", 100)))
            else:
                report = {"method": "fixed", "prior": type(prior).__name__}
            fitted.append(prior)
        reports.append(report)
    if (spec.get("pressure") or {}).get("method") == "ramp":
        progress("pressure ramp")
        ramp, report = _fit_ramp(spec, fitted, stream, temperature, cutoff)
        fitted.append(ramp)
        reports.append(report)
    total = SumPrior(fitted).double() if fitted else NoPrior(type_names)
    evaluation = {name: force_errors(total, FrameStream(Path(data), idx, cutoff), show_progress, f"{name} errors")
                  for name, idx in (("train", train), ("val", splits["val"]), ("test", splits["test"]))}
    return total, {"dataset": str(data), "temperature": temperature, "cutoff": cutoff,
                   "split": {k: [int(v.min()), int(v.max()), int(len(v))] if len(v) else [] for k, v in splits.items()},
                   "terms": reports, "errors": evaluation}


def _pressure_temperature(temperature: float) -> float:
    """The temperature of the kinetic pressure N·k_BT/V; a one-line error if neither dataset nor spec gives one."""
    if not math.isfinite(temperature):
        raise FitError("the pressure term needs a temperature (dataset has none; set 'temperature' in the spec)")
    return temperature


def _virial_constraint(spec: dict[str, Any], fitted: list[Prior], temperature: float) -> VirialConstraint | None:
    """The Das–Andersen constraint of the spec's last (force-matching) term, counting the virial of the terms before it."""
    pressure = spec.get("pressure") or {}
    if pressure.get("method", "virial") != "virial" or "target_bar" not in pressure:
        return None
    fixed = SumPrior(fitted).double() if fitted else None
    return VirialConstraint(float(pressure["target_bar"]), _pressure_temperature(temperature), fixed)


def _fit_ramp(spec: dict[str, Any], fitted: list[Prior], stream: FrameStream, temperature: float,
              cutoff: float) -> tuple[Prior, dict[str, Any]]:
    """A :class:`~cgzoo.priors.ramp.PressureRamp` on every pair whose amplitude brings the training frames' pressure to the target."""
    pressure = spec["pressure"]
    temperature = _pressure_temperature(temperature)
    r_c = float(pressure.get("cutoff") or cutoff)
    fm = [t for t in spec["terms"] if t.get("fit") == "force_matching"]
    exclusions = {"exclude": fm[-1].get("exclude", FMSettings.exclude),
                  "intramolecular": fm[-1].get("intramolecular", FMSettings.intramolecular)} if fm else {}
    type_names = stream.topology.type_names

    def ramp(amplitude: float) -> Prior:
        return build_prior({"class_path": "pressure_ramp", "init_args": {
            "params": {}, "default": {"amplitude": amplitude}, "cutoff": r_c, **exclusions}}, type_names).double()

    def graphs() -> Iterator[CGGraph]:
        return (g for g, _ in stream())

    before = SumPrior(fitted).double() if fitted else NoPrior(type_names)
    try:
        amplitude = ramp_amplitude(before, ramp(1.0), graphs, float(pressure["target_bar"]), temperature)
    except ValueError as exc:
        raise FitError(f"pressure ramp: {exc}") from None
    return ramp(amplitude), {"method": "pressure_ramp", "frames": len(stream.frames), "cutoff": r_c, "amplitude": amplitude,
                             "target_bar": float(pressure["target_bar"]),
                             "train_pressure_before_bar": float(frame_pressures_bar(before, graphs(), temperature).mean())}


def term_keys(stream: FrameStream) -> dict[str, list[str]]:
    """Type keys of every term kind present in the dataset's topology."""
    top = stream.topology
    names = top.type_names
    keys = {"pair": sorted({canonical_key(names, (a, b)) for a in range(len(names)) for b in range(a, len(names))})}
    for kind, arr in (("bond", top.bonds), ("angle", top.angles), ("dihedral", top.dihedrals)):
        keys[kind] = sorted({canonical_key(names, tuple(int(t) for t in top.bead_types[row])) for row in arr})
    return keys


def markdown_report(report: dict[str, Any]) -> str:
    """The held-out force errors and per-term fit figures as a Markdown page."""
    lines = ["# Prior fit report", "", f"dataset: `{report['dataset']}`, T = {report['temperature']} K, "
             f"cutoff = {report['cutoff']} Å", "", "| split | frames | force RMSE | reference RMS | per type |",
             "|---|---|---|---|---|"]
    for name, err in report["errors"].items():
        if err.get("frames"):
            per = ", ".join(f"{k}: {v:.3f}" for k, v in err["per_type_force_rmse"].items())
            lines.append(f"| {name} | {err['frames']} | {err['force_rmse']:.4f} | {err['reference_force_rms']:.4f} | {per} |")
    lines += ["", "Forces in kcal/mol/Å per component.", ""]
    for k, term in enumerate(report["terms"]):
        lines.append(f"## term {k}: {term['method']}")
        for field in ("frames", "train_force_rmse", "condition_number", "n_coefficients", "prior"):
            if field in term:
                lines.append(f"- {field}: {term[field]}")
        for name, info in (term.get("terms") or {}).items():
            lines.append(f"- {name}: sampled {info['sampled_range'][0]:.3f}…{info['sampled_range'][1]:.3f}, "
                         f"{info['samples']} samples" + (f", fit range {info['fit_range'][0]:.3f}…{info['fit_range'][1]:.3f}"
                                                          if "fit_range" in info else ""))
        lines.append("")
    return "\n".join(lines)


def run_fit_prior(data: str | Path, spec_path: str | Path, out: str | Path, export: list[str] | None = None,
                  plots: bool = True, overwrite: bool = False, progress: Callable[[str], None] = print,
                  show_progress: bool | None = False) -> dict[str, Any]:
    """``cgzoo fit-prior``: fit, then write prior.json, report.json/.md, plots/ and tables/<format>/ into ``out``.

    ``progress`` and ``show_progress`` as in :func:`fit_prior`.

    ``out`` is locked for the whole fit and written as a temporary directory renamed into place when
    every file is written, so a killed fit leaves no prior behind and a retry starts clean.
    """
    from cgzoo.data.dataset import verify_checksums
    from cgzoo.errors import check_output_path
    from cgzoo.outputs import atomic_dir

    out = check_output_path(out, overwrite)
    spec = load_spec(spec_path)
    verify_checksums(data)
    with atomic_dir(out, overwrite, marker="prior.json", what="prior directory") as tmp:
        try:
            prior, report = fit_prior(data, spec, progress, show_progress)
        except FitError:
            raise
        except ValueError as exc:  # a prior rejected its arguments or the data's types
            raise InputError(spec_path, str(exc)) from None
        report["spec"] = spec
        _write_fit_outputs(prior, report, spec, Path(data), tmp, out, export, plots)
    return report


def _write_fit_outputs(prior: Prior, report: dict[str, Any], spec: dict[str, Any], data: Path, tmp: Path, out: Path,
                       export: list[str] | None, plots: bool) -> None:
    """Write prior.json, tables, plots and the reports into ``tmp``, naming files by their final place in ``out``."""
    import json

    from cgzoo.fitting.plots import plot_terms, sampled_ranges
    from cgzoo.observables.structure import rdf
    from cgzoo.observables.trajectory import CGTrajectory
    from cgzoo.priors.export import export_tables, unexportable
    from cgzoo.priors.registry import save_prior

    def final(paths: list[Path]) -> list[str]:
        return [str(out / Path(p).relative_to(tmp)) for p in paths]

    stream = FrameStream(data, np.arange(0), report["cutoff"])
    keys = term_keys(stream)
    if export:
        report["exported"] = final(export_tables(prior, tmp / "tables", export, keys, stream.topology.type_names,
                                                 overwrite=True))
        report["not_exported"] = unexportable(prior)
    if plots:
        train = spec_splits(spec, stream.n_frames)["train"][:: 10][:20]  # training frames only
        rdfs = (rdf(CGTrajectory.from_dataset(CGDataset.load(data, train)), max(report["cutoff"], 1.0),
                    intermolecular=True) if report["cutoff"] else {})  # 20 frames read, not the whole file
        report["plots"] = final(plot_terms(prior, keys, stream.topology.type_names, sampled_ranges(report),
                                           tmp / "plots", rdfs))
    (tmp / "report.json").write_text(json.dumps(report, indent=1, default=str))
    (tmp / "report.md").write_text(markdown_report(report))
    save_prior(prior, tmp / "prior.json", {"report": report})
