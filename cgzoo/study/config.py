"""A study file: the grid (systems × mappings × architectures × modes) and named presets that say how hard to run it.

A study YAML has a ``grid`` and ``presets``; a preset is merged over ``defaults`` and may drop
mappings (``skip``, shell patterns on mapping names). :func:`load_study` returns the expanded,
validated :class:`Study`; :mod:`cgzoo.study.plan` turns it into tasks. Paths in the file are
relative to the current directory (the repository root when run as documented).
"""

from __future__ import annotations

import copy
import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from cgzoo.errors import InputError
from cgzoo.schema import Strict, read_yaml_file, validate

MODES = ("prior_only", "ml_only", "delta")
ENSEMBLES = ("nvt", "npt")
#: ``<system>_<n>bead_<operator>``: the shipped mapping file stem that names a grid point.
MAPPING_NAME = re.compile(r"^(?P<system>[\w-]+?)_(?P<beads>\d+)bead_(?P<operator>\w+)$")


class _Priors(Strict):
    """``grid.priors``: the prior specs for one-bead (pairs only) and bonded CG molecules."""

    pairs: str
    bonded: str


class _Grid(Strict):
    """``grid``: what the study compares."""

    mappings_dir: str = "datasets/mappings"
    zoo_dir: str = "models"
    systems: dict[str, list[str]] = Field(min_length=1)
    architectures: list[str] = Field(min_length=1)
    modes: list[Literal[MODES]] = Field(min_length=1)
    priors: _Priors


class _Atomistic(Strict):
    """Options of ``cgzoo generate`` for one system, or ``path``/``top`` of existing data."""

    n_molecules: int = Field(None, gt=0)
    temperature: float = Field(None, gt=0)
    pressure_bar: float = Field(None, gt=0)
    equil_ps: float = Field(None, ge=0)
    prod_ps: float = Field(None, gt=0)
    save_every_fs: float = Field(None, gt=0)
    timestep_fs: float = Field(None, gt=0)
    seed: int = Field(None, ge=0)
    platform: str = None
    path: str = None
    top: str = None
    lammps_units: Literal["real", "metal"] = None


class _MD(Strict):
    """``md``: ``cgzoo simulate`` settings shared by every run, the steps per ensemble, which ensembles run and which
    architectures' models run MD at all (the prior always does)."""

    ensembles: list[Literal[ENSEMBLES]] = Field(None, min_length=1)
    architectures: list[str] = None
    nvt_steps: int = Field(None, gt=0)
    npt_steps: int = Field(None, gt=0)
    replicas: int = Field(None, ge=1)
    start_frame: int = Field(None, ge=0)
    device: str = None
    engine: str = None
    timestep_fs: float = Field(None, gt=0)
    temperature_K: float = Field(None, gt=0)
    pressure_bar: float = Field(None, gt=0)
    friction_per_ps: float = Field(None, gt=0)
    barostat: Literal["mtk", "berendsen"] = None
    tdamp_fs: float = Field(None, gt=0)
    pdamp_fs: float = Field(None, gt=0)
    save_every: int = Field(None, gt=0)
    max_force: float = Field(None, gt=0)
    max_temperature_factor: float = Field(None, gt=1)
    mts: int = Field(None, ge=1)


class _Evaluate(Strict):
    """``evaluate``: equilibration dropped from the start of each run before measuring."""

    nvt_equil_ps: float = Field(None, ge=0)
    npt_equil_ps: float = Field(None, ge=0)


class _DataEfficiency(Strict):
    """``data_efficiency``: held-out force error (and, with ``nvt_steps``, g(r) error) against the number of training
    frames, for Δ, ML only and the prior fitted on the same frames."""

    mappings: list[str] = Field(min_length=1)
    frames: list[Annotated[int, Field(gt=0)]] = Field(min_length=2)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(None, min_length=1)
    architectures: list[str] = None
    nvt_steps: int = Field(None, gt=0)


class _Settings(Strict):
    """``defaults`` or one preset (merged over ``defaults``); keys left out are absent (``None`` defaults are never dumped)."""

    work_dir: str = None
    results_dir: str = None
    workers: int = Field(None, gt=0)
    threads_per_worker: int = Field(None, gt=0)
    scheduler: str = Field(None, min_length=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(None, min_length=1)

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int] | None) -> list[int] | None:
        """A repeated seed would run the same cell twice under two names."""
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds
    skip: list[str] = None
    only: list[str] = None
    architectures: list[str] = None
    atomistic: dict[str, _Atomistic] = None
    networks: dict[str, dict[str, Any]] = None
    training: dict[str, Any] = None
    md: _MD = None
    evaluate: _Evaluate = None
    data_efficiency: _DataEfficiency = None


class StudyFile(Strict):
    """A study file: ``name``, ``grid``, ``defaults`` and named ``presets``."""

    name: str | None = None
    grid: _Grid
    defaults: _Settings | None = None
    presets: dict[str, _Settings | None] = Field(min_length=1)


@dataclass(frozen=True)
class MappingCell:
    """One CG representation of one system: a mapping file applied to that system's atomistic run."""

    name: str
    system: str
    beads_per_molecule: int
    operator: str
    path: Path


@dataclass(frozen=True)
class DataEfficiency:
    """The data-efficiency curves of a preset: which mappings, training-set sizes, seeds and architectures, and the
    length of the NVT run that measures each model's g(r) error (None: force errors only)."""

    mappings: list[str]
    frames: list[int]
    seeds: list[int]
    architectures: list[str]
    nvt_steps: int | None


@dataclass
class Study:
    """The expanded grid and the settings of one preset."""

    name: str
    preset: str
    mappings: list[MappingCell]
    architectures: list[str]
    modes: list[str]
    seeds: list[int]
    priors: dict[str, str]
    #: (architecture, mode) → its training run's configs, ``<zoo_dir>/<arch>.yaml`` and ``<zoo_dir>/modes/<mode>.yaml``
    zoo_configs: dict[tuple[str, str], tuple[Path, Path]]
    atomistic: dict[str, dict[str, Any]]
    networks: dict[str, dict[str, Any]]
    training: dict[str, Any]
    md: dict[str, Any]
    evaluate: dict[str, Any]
    #: the ensembles every model runs, and the architectures whose models run MD (the prior always does)
    ensembles: list[str]
    md_architectures: list[str]
    data_efficiency: DataEfficiency | None
    work_dir: Path
    results_dir: Path
    workers: int
    threads_per_worker: int
    #: address of a running Dask scheduler whose workers run the tasks (None: a local cluster of ``workers`` processes)
    scheduler: str | None
    config_path: Path
    raw: dict[str, Any] = field(default_factory=dict)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: ``over`` wins, nested dicts are merged, everything else replaced."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else copy.deepcopy(value)
    return out


def _require(block: dict[str, Any], key: str, path: Path, where: str) -> Any:
    if key not in block:
        raise InputError(path, f"{where}: missing '{key}'")
    return block[key]


def _check_one_cutoff(networks: dict[str, dict[str, Any]], architectures: list[str], priors: dict[str, str],
                      path: Path, preset: str) -> None:
    """Every network of a preset sees the same neighbourhood, at least the prior's: a comparison of architectures or
    of Δ against ML only must not be a comparison of cutoffs (a short one cuts the first shell of large beads)."""
    from cgzoo.schema import read_yaml_file

    cutoffs = {a: networks[a].get("cutoff") for a in architectures}
    if len(set(cutoffs.values())) > 1 or None in cutoffs.values():
        raise InputError(path, f"preset {preset!r}: every network needs the same explicit cutoff, got {cutoffs}")
    cutoff = next(iter(cutoffs.values()))
    for key, spec in priors.items():
        terms = (read_yaml_file(spec, "prior spec") or {}).get("terms") or []
        longest = max((float(t["cutoff"]) for t in terms if isinstance(t, dict) and "cutoff" in t), default=0.0)
        if cutoff < longest:
            raise InputError(path, f"preset {preset!r}: network cutoff {cutoff} Å is shorter than the {longest} Å of "
                                   f"the prior {spec} (grid.priors.{key})")


def _known(names: list[str], allowed: list[str], path: Path, where: str) -> None:
    """A one-line error for any of ``names`` that is not in ``allowed``."""
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise InputError(path, f"{where}: {unknown} not in the grid's {allowed}")


def _data_efficiency(block: dict[str, Any] | None, cells: list[MappingCell], architectures: list[str],
                     seeds: list[int], path: Path, preset: str) -> DataEfficiency | None:
    """The preset's ``data_efficiency`` block expanded: mapping patterns matched against the preset's mappings."""
    if not block:
        return None
    where = f"preset {preset!r}: data_efficiency"
    mappings = [c.name for c in cells if any(fnmatch.fnmatch(c.name, p) for p in block["mappings"])]
    if not mappings:
        raise InputError(path, f"{where}.mappings {block['mappings']} match none of the preset's mappings")
    archs = list(block.get("architectures") or architectures)
    _known(archs, architectures, path, f"{where}.architectures")
    frames = sorted(set(block["frames"]))
    return DataEfficiency(mappings, frames, list(block.get("seeds") or seeds[:1]), archs, block.get("nvt_steps"))


def load_study(path: str | Path, preset: str) -> Study:
    """Read a study YAML (checked against :class:`StudyFile`) and expand preset ``preset``; one-line :class:`InputError` on anything malformed."""
    path = Path(path)
    raw = validate(StudyFile, read_yaml_file(path, "study file"), path).model_dump(exclude_unset=True)
    grid = raw["grid"]
    presets = raw["presets"]
    if preset not in presets:
        raise InputError(path, f"no preset {preset!r} (have {', '.join(presets)})")
    settings = _merge(raw.get("defaults") or {}, presets[preset] or {})

    mappings_dir = Path(grid.get("mappings_dir", "datasets/mappings"))
    skip = list(settings.get("skip") or [])
    only = settings.get("only")
    cells = []
    for system, names in grid["systems"].items():
        for stem in names:
            full = f"{system}_{stem}"
            match = MAPPING_NAME.match(full)
            if match is None:
                raise InputError(path, f"grid.systems.{system}: {stem!r} is not '<n>bead_<operator>'")
            found = [p for p in (mappings_dir / f"{full}.yaml", mappings_dir / f"{full}.xml") if p.exists()]
            if not found:
                raise InputError(mappings_dir / f"{full}.yaml", f"mapping named in {path} does not exist (.yaml or VOTCA .xml)")
            if any(fnmatch.fnmatch(full, pattern) for pattern in skip):
                continue
            if only is not None and not any(fnmatch.fnmatch(full, pattern) for pattern in only):
                continue
            mapping_path = found[0]
            cells.append(MappingCell(full, system, int(match["beads"]), match["operator"], mapping_path))

    if not cells:
        raise InputError(path, f"preset {preset!r}: no mapping of the grid is left after 'skip' and 'only'")
    modes = list(grid["modes"])
    architectures = list(grid["architectures"])
    from cgzoo.models.registry import NETWORKS

    unknown = [a for a in architectures if a not in NETWORKS]
    if unknown:
        raise InputError(path, f"grid.architectures: unknown {unknown} (registered: {', '.join(NETWORKS)})")
    if settings.get("architectures") is not None:  # a preset may train a subset of the grid's architectures
        _known(settings["architectures"], architectures, path, f"preset {preset!r}: architectures")
        architectures = [a for a in architectures if a in settings["architectures"]]
    zoo_dir = Path(grid.get("zoo_dir", "models"))
    zoo_configs = {(a, m): (zoo_dir / f"{a}.yaml", zoo_dir / "modes" / f"{m}.yaml")
                   for a in architectures for m in modes if m != "prior_only"}
    for config in sorted({c for pair in zoo_configs.values() for c in pair}):
        if not config.exists():
            raise InputError(config, f"zoo config needed by {path} does not exist (grid.zoo_dir)")
    priors = dict(grid["priors"])
    for key in ("pairs", "bonded"):
        spec = Path(priors[key])
        if not spec.exists():
            raise InputError(spec, f"prior spec named in {path} (grid.priors.{key}) does not exist")

    systems = {c.system for c in cells}
    atomistic_settings = settings.get("atomistic") or {}
    atomistic = {s: _merge(atomistic_settings.get("default") or {}, atomistic_settings.get(s) or {}) for s in systems}
    networks = settings.get("networks") or {}
    missing = [a for a in architectures if a not in networks]
    if missing:
        raise InputError(path, f"preset {preset!r}: no network settings for {missing}")
    _check_one_cutoff(networks, architectures, priors, path, preset)
    md = dict(settings.get("md") or {})
    ensembles = list(md.pop("ensembles", None) or ENSEMBLES)
    md_architectures = md.pop("architectures", None)
    md_architectures = list(architectures if md_architectures is None else md_architectures)
    _known(md_architectures, architectures, path, f"preset {preset!r}: md.architectures")
    for ensemble in ensembles:
        _require(md, f"{ensemble}_steps", path, f"preset {preset!r}: md")
    for ensemble in set(ENSEMBLES) - set(ensembles):
        md.pop(f"{ensemble}_steps", None)
    seeds = list(settings.get("seeds", [0]))
    data_efficiency = _data_efficiency(settings.get("data_efficiency"), cells, architectures, seeds, path, preset)
    return Study(
        name=str(raw.get("name", path.stem)),
        preset=preset,
        mappings=cells,
        architectures=architectures,
        modes=modes,
        seeds=seeds,
        priors={k: str(v) for k, v in priors.items()},
        zoo_configs=zoo_configs,
        atomistic=atomistic,
        networks={a: dict(networks[a]) for a in architectures},
        training=dict(settings.get("training") or {}),
        md=md,
        evaluate=dict(settings.get("evaluate") or {}),
        ensembles=ensembles,
        md_architectures=md_architectures,
        data_efficiency=data_efficiency,
        work_dir=Path(_require(settings, "work_dir", path, f"preset {preset!r}")),
        results_dir=Path(_require(settings, "results_dir", path, f"preset {preset!r}")),
        workers=settings.get("workers", 1),
        threads_per_worker=settings.get("threads_per_worker", 1),
        scheduler=settings.get("scheduler"),
        config_path=path,
        raw=settings,
    )
