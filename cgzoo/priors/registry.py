"""Names → prior classes as ``module:Class`` strings (imported on first use), and building priors from config specs.

A spec is ``None``/``"none"`` (no prior), a registered name or dotted import path with
``init_args``, or a list of specs (their sum). User classes are referenced by import path,
e.g. ``{"class_path": "mypkg.priors.MyPrior", "init_args": {...}}``, must subclass
:class:`~cgzoo.priors.base.Prior`, and resolve only from plugin modules the user enabled
(:mod:`cgzoo.plugins`): a file naming a module never makes cgzoo import it. Adding a prior
family is one file plus a line here, as an architecture is in :mod:`cgzoo.models.registry`.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from cgzoo.errors import InputError
from cgzoo.plugins import Registry
from cgzoo.priors.base import NoPrior, Prior, SumPrior

#: name → ``module:Class``, imported when the name is first used (so ``import cgzoo.priors`` loads no scipy)
PRIORS: dict[str, str] = {
    "none": "cgzoo.priors.base:NoPrior",
    "sum": "cgzoo.priors.base:SumPrior",
    "lennard_jones": "cgzoo.priors.lennard_jones:LennardJones",
    "mie": "cgzoo.priors.lennard_jones:Mie",
    "soft_repulsion": "cgzoo.priors.lennard_jones:SoftRepulsion",
    "wca": "cgzoo.priors.lennard_jones:WCA",
    "morse": "cgzoo.priors.morse:Morse",
    "pressure_ramp": "cgzoo.priors.ramp:PressureRamp",
    "harmonic_bond": "cgzoo.priors.harmonic:HarmonicBond",
    "harmonic_angle": "cgzoo.priors.harmonic:HarmonicAngle",
    "cosine_angle": "cgzoo.priors.harmonic:CosineHarmonicAngle",
    "fourier_dihedral": "cgzoo.priors.dihedral:FourierDihedral",
    "tabulated": "cgzoo.priors.tabulated:Tabulated",
    "table_file": "cgzoo.priors.table_file:TableFile",
}
_REGISTRY = Registry("prior class", Prior, PRIORS)


def prior_class(name: str) -> type[Prior]:
    """The class registered as ``name`` (or a built-in's dotted path), or an enabled plugin's :class:`Prior`."""
    return _REGISTRY.resolve(name)


def build_prior(spec: Any, type_names: list[str] | None = None) -> Prior:
    """Build a prior from a spec (see module docstring); ``type_names`` fills ``init_args`` that need it."""
    if spec is None or spec == "none":
        return NoPrior(type_names)
    if isinstance(spec, Prior):
        return spec
    if isinstance(spec, (list, tuple)):
        return SumPrior([build_prior(s, type_names) for s in spec])
    if isinstance(spec, str):
        spec = {"class_path": spec}
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(f"a prior spec needs 'class_path' (and 'init_args'), got {spec!r}")
    cls = prior_class(spec["class_path"])
    args = dict(spec.get("init_args") or {})
    if cls is SumPrior:
        return SumPrior([build_prior(s, type_names) for s in args.get("priors", [])])
    if type_names is not None and "type_names" in inspect.signature(cls).parameters and "type_names" not in args:
        args["type_names"] = list(type_names)
    try:
        return cls(**args)
    except TypeError as exc:
        raise ValueError(f"prior {spec['class_path']!r}: {exc}") from None


def prior_spec(prior: Prior) -> dict[str, Any]:
    """The spec that rebuilds ``prior`` with :func:`build_prior` (registered name where there is one; a sum lists its members' specs)."""
    cls = type(prior)
    name = getattr(cls, "spec_name", None) or _REGISTRY.name_of(cls)
    args = {"priors": [prior_spec(p) for p in prior.priors]} if isinstance(prior, SumPrior) else prior.config()
    return {"class_path": name, "init_args": args}


PRIOR_FORMAT = "cgzoo-prior"
PRIOR_VERSION = 1


def save_prior(prior: Prior, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``prior`` as JSON (its spec: class path and constructor arguments; no pickled code)."""
    path = Path(path)
    payload = {"format": PRIOR_FORMAT, "version": PRIOR_VERSION, "prior": prior_spec(prior), **(extra or {})}
    path.write_text(json.dumps(payload, indent=1))
    return path


def load_prior(path: str | Path) -> Prior:
    """Read a prior saved by :func:`save_prior` (a ``prior.json`` or the directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "prior.json"
    if not path.exists():
        raise InputError(path, "prior file does not exist")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(path, "not a cgzoo prior (unreadable JSON)") from None
    except RecursionError:
        raise InputError(path, "not a cgzoo prior (JSON nested too deeply)") from None
    if not isinstance(payload, dict) or payload.get("format") != PRIOR_FORMAT:
        raise InputError(path, "not a cgzoo prior (missing format tag)")
    if payload.get("version") != PRIOR_VERSION:
        raise InputError(path, f"prior format version {payload.get('version')!r} is not the one this cgzoo reads "
                               f"({PRIOR_VERSION})")
    try:
        return build_prior(payload["prior"])
    except KeyError as exc:
        raise InputError(path, f"cannot rebuild the prior: missing key {exc}") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise InputError(path, f"cannot rebuild the prior: {exc}") from None
