"""Write the pre-``bond_aware`` checkpoints of this folder: run with PYTHONPATH at cgzoo commit 3a60ce0 (before the argument).

One float64 Δ model per built-in network (the shared suite's small case on its physics prior, seed 0), saved as
``cgzoo fit`` saves it, and its energies and forces on the model suite's two frames, which the current code must
reproduce from the checkpoint (tests/test_bond_aware.py).
"""

import json
from pathlib import Path

import torch

from cgzoo.models.checkpoint import model_block
from cgzoo.testing.cases import NETWORK_CASES
from cgzoo.testing.networks import evaluate, make_model, model_system

HERE = Path(__file__).parent

if __name__ == "__main__":
    expected = {}
    for name, args in NETWORK_CASES.items():
        model = make_model(name, args, "delta")
        state = {f"model.{k}": v for k, v in model.state_dict().items()}
        torch.save({"cgzoo": model_block(model, ema=False, dtype="float64"), "state_dict": state}, HERE / f"{name}.ckpt")
        out = evaluate(model, model_system())
        expected[name] = {"energy": out["energy"].tolist(), "forces": out["forces"].tolist()}
    (HERE / "expected.json").write_text(json.dumps(expected))
