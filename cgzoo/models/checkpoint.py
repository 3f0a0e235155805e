"""The model checkpoint format: the ``cgzoo`` block that describes a model, and safe loading of a trained model.

A checkpoint's ``cgzoo`` block holds JSON specs of the prior and the network, the type map, mode,
scales and units; the model is rebuilt from them (built-in classes, or enabled plugins only:
:mod:`cgzoo.plugins`) and its weights (the EMA copy when the run kept one) loaded from the state
dict, read with ``weights_only=True`` so no pickled code runs. Models own this format, as priors
own ``prior.json``, so MD and analysis load models without the trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from cgzoo.errors import InputError
from cgzoo.models.base import CGModel
from cgzoo.models.registry import build_network, network_spec
from cgzoo.priors import build_prior, prior_spec
from cgzoo.units import DATASET_UNITS

#: the ``format`` tag of a cgzoo model checkpoint block
MODEL_FORMAT = "cgzoo-model"


def model_block(model: CGModel, ema: bool, dtype: str) -> dict[str, Any]:
    """The ``cgzoo`` block describing ``model`` (weights under ``ema.module.`` when ``ema``, else ``model.``)."""
    return {
        "format": MODEL_FORMAT,
        "version": 1,
        "type_names": list(model.type_names),
        "mode": model.mode,
        "prior": json.dumps(prior_spec(model.prior)),
        "network": json.dumps(network_spec(model.net)) if model.net is not None else None,
        "energy_scale": float(model.energy_scale),
        "type_shift": model.type_shift.tolist(),
        "units": dict(DATASET_UNITS),
        "ema": ema,
        "dtype": dtype,
    }


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
    except Exception as exc:  # noqa: BLE001 - torch's unpickler fails on foreign bytes with any exception type
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        first = first if len(first) <= 100 else first[:first.rfind(" ", 0, 100)] + " …"
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(checkpoint, dict):
        raise InputError(path, "not a cgzoo model checkpoint (not a dictionary)")
    return checkpoint


def checkpoint_block(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """The ``cgzoo`` block of a checkpoint read from ``path``; :class:`InputError` when it has none."""
    block = checkpoint.get("cgzoo")
    if not isinstance(block, dict) or block.get("format") != MODEL_FORMAT:
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
