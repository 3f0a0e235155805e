"""Load a trained CG model from a Lightning checkpoint safely (``torch.load(weights_only=True)``, no pickled code).

The checkpoint's ``cgzoo`` block holds JSON specs of the prior and the network, the type map,
mode, scales and units; the model is rebuilt from them and its weights (the EMA copy when the
run kept one) loaded from the state dict.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from cgzoo.errors import InputError
from cgzoo.models import CGModel, build_network
from cgzoo.priors import build_prior


def model_from_block(block: dict[str, Any]) -> CGModel:
    """An untrained CG model with the architecture, prior and scales a checkpoint block describes."""
    prior = build_prior(json.loads(block["prior"]))
    net = None
    if block.get("network"):
        spec = json.loads(block["network"])
        net = build_network(spec.pop("name"), **spec)
    return CGModel(prior, net, mode=block["mode"], energy_scale=block["energy_scale"], type_shift=block["type_shift"])


def load_model(path: str | Path, use_ema: bool = True) -> CGModel:
    """The CG model of checkpoint ``path`` in eval mode; one-line :class:`InputError` for broken or foreign files."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "checkpoint does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    block = checkpoint.get("cgzoo") if isinstance(checkpoint, dict) else None
    if not isinstance(block, dict) or block.get("format") != "cgzoo-model":
        raise InputError(path, "not a cgzoo model checkpoint (no cgzoo block)")
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
