"""The files of a noise-floor output directory: its settings (the resume key), per-configuration checkpoints and the mean forces.

Layout::

    settings.json          what was measured and how; a rerun must match it to resume
    configs/config_0007.npz  one finished restrained run (mean, variance, SEM², restraint deviation)
    mean_forces.npz        every configuration's bead positions, boxes, mean forces, variances, SEM²,
                           raw mapped forces and the CG topology: all a model score needs, no MD
    noise_floor.json, report.md, noise_floor.png   the results (written by :mod:`cgzoo.meanforce.report`)

Every file is written atomically (checkpoints flushed to disk), so a killed run leaves finished
configurations behind and nothing torn.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgzoo.errors import InputError
from cgzoo.meanforce.statistics import ConfigStats
from cgzoo.outputs import check_owned_dir, write_atomic, write_json_atomic

SETTINGS = "settings.json"
CONFIGS = "configs"
MEAN_FORCES = "mean_forces.npz"
#: everything the command writes, which --overwrite removes (and nothing else)
OWNED = (SETTINGS, CONFIGS, MEAN_FORCES, "noise_floor.json", "report.md", "noise_floor.png")


def prepare(out: Path, settings: dict, overwrite: bool) -> None:
    """Make ``out`` hold ``settings``: new, resumed (same settings) or replaced (``overwrite``); call under its lock."""
    check_owned_dir(out, SETTINGS, "noise-floor output")
    if overwrite:
        for name in OWNED:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    settings_path = out / SETTINGS
    if settings_path.exists():
        old = json.loads(settings_path.read_text())
        changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if changed:
            raise InputError(out, f"holds a noise-floor run with other settings ({', '.join(changed)}); "
                                  "use another --out or --overwrite")
    (out / CONFIGS).mkdir(parents=True, exist_ok=True)
    write_json_atomic(settings_path, settings)


def read_settings(out: Path) -> dict:
    """The settings of an existing output directory."""
    path = Path(out) / SETTINGS
    if not path.exists():
        raise InputError(out, f"is not a noise-floor output (no {SETTINGS})")
    return json.loads(path.read_text())


def config_path(out: Path, index: int) -> Path:
    """Checkpoint file of configuration ``index``."""
    return out / CONFIGS / f"config_{index:04d}.npz"


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@dataclass
class ConfigResult:
    """One finished restrained run: its source frame, statistics, restraint deviations (Å) and wall time (s)."""

    frame: int
    stats: ConfigStats
    rms_deviation: float
    max_deviation: float
    seconds: float


def save_config(out: Path, index: int, result: ConfigResult) -> None:
    """Checkpoint one finished restrained run."""
    s = result.stats
    write_atomic(config_path(out, index), _npz_bytes(
        frame=np.int64(result.frame), mean=s.mean, variance=s.variance, sem2=s.sem2, n_samples=np.int64(s.n_samples),
        rms_deviation=np.float64(result.rms_deviation), max_deviation=np.float64(result.max_deviation),
        seconds=np.float64(result.seconds)))


def load_config(out: Path, index: int) -> ConfigResult:
    """A checkpointed run."""
    with np.load(config_path(out, index)) as data:
        stats = ConfigStats(mean=data["mean"], variance=data["variance"], sem2=data["sem2"],
                            n_samples=int(data["n_samples"]))
        return ConfigResult(int(data["frame"]), stats, float(data["rms_deviation"]), float(data["max_deviation"]),
                            float(data["seconds"]))


def save_mean_forces(out: Path, **arrays: np.ndarray) -> None:
    """Write ``mean_forces.npz`` (see the module docstring for what it holds)."""
    write_atomic(out / MEAN_FORCES, _npz_bytes(**arrays))


def load_mean_forces(out: Path) -> dict[str, np.ndarray]:
    """Every array of ``mean_forces.npz``."""
    path = Path(out) / MEAN_FORCES
    if not path.exists():
        raise InputError(out, f"has no {MEAN_FORCES}; the noise-floor run has not finished")
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
