"""Read and write Lightning checkpoints safely: no pickled code on load, no half-written file under a final name.

The checkpoint's ``cgzoo`` block holds JSON specs of the prior and the network, the type map,
mode, scales and units; the model is rebuilt from them (built-in classes, or enabled plugins
only: :mod:`cgzoo.plugins`) and its weights (the EMA copy when the run kept one) loaded from
the state dict. :class:`SafeCheckpointIO` is the trainer's checkpoint I/O, so Lightning's own
``--ckpt_path`` resume reads through :func:`read_checkpoint` too.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from cgzoo.errors import InputError
from cgzoo.models import CGModel, build_network
from cgzoo.outputs import remove_stale_temporaries, temp_sibling
from cgzoo.priors import build_prior


def model_from_block(block: dict[str, Any]) -> CGModel:
    """An untrained CG model with the architecture, prior and scales a checkpoint block describes."""
    prior = build_prior(json.loads(block["prior"]))
    net = None
    if block.get("network"):
        spec = json.loads(block["network"])
        net = build_network(spec.pop("name"), **spec)
    return CGModel(prior, net, mode=block["mode"], energy_scale=block["energy_scale"], type_shift=block["type_shift"])


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint dictionary at ``path``, read with ``weights_only=True``; one-line :class:`InputError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint does not exist" if not path.exists() else "checkpoint is not a file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(checkpoint, dict):
        raise InputError(path, "not a cgzoo model checkpoint (not a dictionary)")
    return checkpoint


def checkpoint_block(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The ``cgzoo`` block of a checkpoint read from ``path``; :class:`InputError` when it has none."""
    block = checkpoint.get("cgzoo")
    if not isinstance(block, dict) or block.get("format") != "cgzoo-model":
        raise InputError(path, "not a cgzoo model checkpoint (no cgzoo block)")
    return block


def load_model(path: str | Path, use_ema: bool = True) -> CGModel:
    """The CG model of checkpoint ``path`` in eval mode; one-line :class:`InputError` for broken or foreign files."""
    path = Path(path)
    checkpoint = read_checkpoint(path)
    block = checkpoint_block(checkpoint, path)
    try:
        model = model_from_block(block)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"cannot rebuild the model: {exc}") from None
    state = checkpoint.get("state_dict", {})
    prefix = "ema.module." if use_ema and block.get("ema") else "model."
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise InputError(path, f"weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(getattr(torch, block.get("dtype", "float32"))).eval()


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
        tmp = temp_sibling(path)
        try:
            with tmp.open("wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if weights_only is False:
            raise InputError(path, "cgzoo reads checkpoints with weights_only=True only (no pickled code)")
        return read_checkpoint(path, map_location if map_location is not None else "cpu")
