"""Resumable GROMACS TRR output: frames go to a segment file that is appended to ``traj.trr`` at checkpoints.

A TRR file is a plain concatenation of self-contained frames, so appending a finished segment's
bytes extends the trajectory, and truncating ``traj.trr`` to the size recorded at the last
checkpoint removes anything a killed run left behind. TRR units are GROMACS's: nm, kJ/(mol·nm),
ps, which are also OpenMM's, so frames are written exactly as OpenMM reports them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from MDAnalysis.lib.formats.libmdaxdr import TRRFile

from cgzoo.generate.files import append_file


class TrrSegments:
    """Writes frames to ``segment`` and moves them into ``target`` on :meth:`commit`."""

    def __init__(self, target: Path, segment: Path) -> None:
        self.target = target
        self.segment = segment
        self._file: TRRFile | None = None
        self.pending = 0

    def write(
        self,
        positions_nm: np.ndarray,
        forces_kj_mol_nm: np.ndarray,
        box_nm: np.ndarray,
        step: int,
        time_ps: float,
    ) -> None:
        """Add one frame (positions nm, forces kJ/(mol·nm), 3×3 box nm with row vectors) to the open segment."""
        if self._file is None:
            self._file = TRRFile(str(self.segment), "w")
        n_atoms = len(positions_nm)
        self._file.write(positions_nm, None, forces_kj_mol_nm, box_nm, step, time_ps, 0.0, n_atoms)
        self.pending += 1

    def commit(self) -> int:
        """Append the pending frames to the target file; return its size in bytes."""
        if self._file is not None:
            self._file.close()
            self._file = None
            size = append_file(self.target, self.segment)
            self.segment.unlink()
        else:
            self.target.touch()
            size = self.target.stat().st_size
        self.pending = 0
        return size

    def abandon(self) -> None:
        """Close the segment without committing it, as a killed run would leave it."""
        if self._file is not None:
            self._file.close()
            self._file = None
