"""``progress.json``: where an unfinished generator run stands, so a re-run resumes instead of restarting."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cgzoo.errors import InputError
from cgzoo.outputs import write_json_atomic

PROGRESS_FILE = "progress.json"


@dataclass
class Progress:
    """State at the last checkpoint.

    ``stage`` is the stage the checkpoint belongs to and ``block`` how many of its blocks are
    done; ``traj_bytes``/``log_bytes`` are the sizes of ``traj.trr``/``log.csv`` at that moment;
    ``density_series`` holds the equilibration samples (time ps, density g/cm³, volume Å³).
    """

    options: dict
    stage: str
    block: int
    checkpoint: str
    traj_bytes: int = 0
    log_bytes: int = 0
    n_frames: int = 0
    density_series: list[list[float]] = field(default_factory=list)

    def save(self, out: Path) -> None:
        """Write atomically to ``out/progress.json``."""
        write_json_atomic(out / PROGRESS_FILE, asdict(self))

    @classmethod
    def load(cls, out: Path) -> Progress:
        """Read ``out/progress.json``; raise :class:`InputError` if it is unreadable."""
        path = out / PROGRESS_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(
                path, f"cannot resume: unreadable progress file ({exc}); pass overwrite to restart"
            ) from exc
