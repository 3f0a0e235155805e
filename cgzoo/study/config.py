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
from typing import Any

from cgzoo.errors import InputError, read_yaml

MODES = ("prior_only", "ml_only", "delta")
#: ``<system>_<n>bead_<operator>``: the shipped mapping file stem that names a grid point.
MAPPING_NAME = re.compile(r"^(?P<system>[\w-]+?)_(?P<beads>\d+)bead_(?P<operator>\w+)$")


@dataclass(frozen=True)
class MappingCell:
    """One CG representation of one system: a mapping file applied to that system's atomistic run."""

    name: str
    system: str
    beads_per_molecule: int
    operator: str
    path: Path


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
    zoo_configs: dict[tuple[str, str], Path]
    atomistic: dict[str, dict[str, Any]]
    networks: dict[str, dict[str, Any]]
    training: dict[str, Any]
    md: dict[str, Any]
    evaluate: dict[str, Any]
    work_dir: Path
    results_dir: Path
    workers: int
    threads_per_worker: int
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


def load_study(path: str | Path, preset: str) -> Study:
    """Read a study YAML and expand preset ``preset``; one-line :class:`InputError` on anything malformed."""
    path = Path(path)
    raw = read_yaml(path, "study file")
    if not isinstance(raw, dict):
        raise InputError(path, "a study file is a mapping with 'grid', 'defaults' and 'presets'")
    grid = _require(raw, "grid", path, "top level")
    presets = _require(raw, "presets", path, "top level")
    if preset not in presets:
        raise InputError(path, f"no preset {preset!r} (have {', '.join(presets)})")
    settings = _merge(raw.get("defaults") or {}, presets[preset] or {})

    mappings_dir = Path(grid.get("mappings_dir", "datasets/mappings"))
    skip = list(settings.get("skip") or [])
    cells = []
    for system, names in _require(grid, "systems", path, "grid").items():
        for stem in names:
            full = f"{system}_{stem}"
            match = MAPPING_NAME.match(full)
            if match is None:
                raise InputError(path, f"grid.systems.{system}: {stem!r} is not '<n>bead_<operator>'")
            if any(fnmatch.fnmatch(full, pattern) for pattern in skip):
                continue
            found = [p for p in (mappings_dir / f"{full}.yaml", mappings_dir / f"{full}.xml") if p.exists()]
            if not found:
                raise InputError(mappings_dir / f"{full}.yaml", f"mapping named in {path} does not exist (.yaml or VOTCA .xml)")
            mapping_path = found[0]
            cells.append(MappingCell(full, system, int(match["beads"]), match["operator"], mapping_path))

    modes = list(_require(grid, "modes", path, "grid"))
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise InputError(path, f"grid.modes: unknown {bad} (known: {', '.join(MODES)})")
    architectures = list(_require(grid, "architectures", path, "grid"))
    from cgzoo.models.registry import NETWORKS

    unknown = [a for a in architectures if a not in NETWORKS]
    if unknown:
        raise InputError(path, f"grid.architectures: unknown {unknown} (registered: {', '.join(NETWORKS)})")
    zoo_dir = Path(grid.get("zoo_dir", "models"))
    zoo_configs = {(a, m): zoo_dir / f"{a}_{m}.yaml" for a in architectures for m in modes if m != "prior_only"}
    for config in zoo_configs.values():
        if not config.exists():
            raise InputError(config, f"zoo config needed by {path} does not exist (grid.zoo_dir)")
    priors = dict(_require(grid, "priors", path, "grid"))
    for key in ("pairs", "bonded"):
        spec = Path(_require(priors, key, path, "grid.priors"))
        if not spec.exists():
            raise InputError(spec, f"prior spec named in {path} (grid.priors.{key}) does not exist")

    systems = {c.system for c in cells}
    atomistic_settings = settings.get("atomistic") or {}
    atomistic = {s: _merge(atomistic_settings.get("default") or {}, atomistic_settings.get(s) or {}) for s in systems}
    networks = settings.get("networks") or {}
    missing = [a for a in architectures if a not in networks]
    if missing:
        raise InputError(path, f"preset {preset!r}: no network settings for {missing}")
    md = dict(settings.get("md") or {})
    for key in ("nvt_steps", "npt_steps"):
        if not isinstance(md.get(key), int) or md[key] < 0:
            raise InputError(path, f"preset {preset!r}: md.{key} must be a non-negative integer")
    seeds = [int(s) for s in settings.get("seeds", [0])]
    if not seeds:
        raise InputError(path, f"preset {preset!r}: seeds is empty")
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
        work_dir=Path(_require(settings, "work_dir", path, f"preset {preset!r}")),
        results_dir=Path(_require(settings, "results_dir", path, f"preset {preset!r}")),
        workers=int(settings.get("workers", 1)),
        threads_per_worker=int(settings.get("threads_per_worker", 1)),
        config_path=path,
        raw=settings,
    )
