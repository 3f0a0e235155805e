"""Lightning checkpoint I/O that never runs pickled code on load and never leaves a half-written file under a final name.

The checkpoint format itself (the ``cgzoo`` block, :func:`~cgzoo.models.checkpoint.load_model`) belongs to
:mod:`cgzoo.models.checkpoint`; :class:`SafeCheckpointIO` is the trainer's checkpoint I/O, so Lightning's own
``--ckpt_path`` resume reads through :func:`~cgzoo.models.checkpoint.read_checkpoint` too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from cgzoo.errors import InputError
from cgzoo.models.checkpoint import read_checkpoint
from cgzoo.outputs import remove_stale_temporaries, replace_file


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that loads only with ``weights_only=True`` and writes by rename in the same folder.

    Lightning's own atomic save writes to the system temporary folder and moves the file, which is
    a copy onto the final name when that folder is on another filesystem; here the temporary is a
    hidden sibling, flushed to disk, then renamed, so a kill never leaves a partial ``*.ckpt``.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)  # left by a killed run; the run's directory lock makes this process the only writer
        replace_file(path, lambda tmp: torch.save(checkpoint, tmp), sync=True)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if weights_only is False:
            raise InputError(path, "cgzoo reads checkpoints with weights_only=True only (no pickled code)")
        return read_checkpoint(path, map_location if map_location is not None else "cpu")
