"""What a new run records about its model and start (``run.json``): model label and sha256, topology, bead types, held-out force RMSE."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
from ase import Atoms

from cgzoo.hashing import file_sha256
from cgzoo.md.calculator import CGCalculator
from cgzoo.md.settings import SimulationSettings
from cgzoo.metrics import ForceErrors
from cgzoo.models import CGModel


def record_inputs(s: SimulationSettings, model: str | Path | CGModel, sha256: str, start: str, calc: CGCalculator,
                  atoms: Atoms, topology: dict[str, np.ndarray]) -> None:
    """Fill the settings a new run records about its model and start structure (``run.json``)."""
    s.model, s.model_sha256 = model_label(model, calc.model), sha256
    s.start = s.start or str(start)
    s.bonds, s.angles, s.dihedrals = (np.asarray(topology[k]).tolist() for k in ("bonds", "angles", "dihedrals"))
    s.type_names = list(calc.model.type_names)
    s.bead_types = [s.type_names[int(t)] for t in calc.bead_types(atoms)]
    start_path = Path(str(start).partition("@")[0])
    if start_path.suffix.lower() in (".h5", ".hdf5"):
        held_out = held_out_force_rmse(calc.model, start_path)
        s.force_rmse_test, s.force_rmse_frames = held_out["force_rmse_test"], held_out["force_rmse_frames"]
    s.molecule_ids = np.asarray(atoms.arrays.get("molecule_id", np.arange(len(atoms))), dtype=int).tolist()


def model_sha256(model: str | Path | CGModel, loaded: CGModel) -> str:
    """What a restart must match: the sha256 of the model file (a prior directory's ``prior.json``), or of the weights of an in-memory model."""
    if isinstance(model, CGModel):
        digest = hashlib.sha256()
        for name, tensor in loaded.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().double().cpu().numpy().tobytes())
        return digest.hexdigest()
    path = Path(model)
    return file_sha256(path / "prior.json" if path.is_dir() else path)


def model_label(model: str | Path | CGModel, loaded: CGModel) -> str:
    """How ``run.json`` names the model: its file, or the network class (``prior`` for a prior alone)."""
    if isinstance(model, (str, Path)):
        return str(model)
    return type(loaded.net).__name__ if loaded.net is not None else "prior"


def held_out_force_rmse(model: CGModel, dataset: Path, max_frames: int | None = None) -> dict[str, float | None]:
    """The model's force RMSE (kcal/mol/Å per component) and R² on the test-split frames of ``dataset`` (every one, or
    ``max_frames`` spread evenly over them).

    The split is the training default (:data:`cgzoo.data.splits.DEFAULT_SPLIT`), so these are frames
    no model trained with the defaults has seen; recorded in ``run.json`` for ``cgzoo evaluate``, and the same
    number ``cgzoo fit``'s test metrics and the study report for that model.
    """
    frames, sums = held_out_frame_errors(model, dataset, max_frames)
    if not len(frames):
        return {"force_rmse_test": None, "force_r2_test": None, "force_rmse_frames": 0}
    total = ForceErrors.from_sums(sums.sum(axis=0)).total()
    return {"force_rmse_test": total.rmse, "force_r2_test": total.r2, "force_rmse_frames": len(frames)}


def held_out_frame_errors(model: CGModel, dataset: Path, max_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The test-split frames of ``dataset`` (as :func:`held_out_force_rmse` picks them) and the model's force-error
    sums on each, ``(frames, len(ForceErrors.ROWS))``: what a paired bootstrap over frames resamples to compare two
    models on the same frames. No frames (and an empty array) for a dataset too short to hold any out.
    """
    from cgzoo.data.dataset import CGDataset
    from cgzoo.data.splits import DEFAULT_SPLIT, SplitError, block_split
    from cgzoo.neighbors import TopologyCache, batch_graph

    ds = CGDataset.load(dataset)
    try:
        test = block_split(ds.n_frames, **DEFAULT_SPLIT)["test"]
    except SplitError:  # a dataset too short to hold out frames: no held-out error to report
        return np.zeros(0, dtype=int), np.zeros((0, len(ForceErrors.ROWS)))
    if max_frames is not None:
        test = test[np.linspace(0, len(test) - 1, min(max_frames, len(test))).round().astype(int)]
    top = ds.topology
    cache = TopologyCache(top.n_beads, top.bonds, top.molecule_ids)
    if model.energy_scale.device.type != "cpu":  # the graphs below are built on the CPU
        model = copy.deepcopy(model).cpu()
    dtype = model.energy_scale.dtype
    sums = np.zeros((len(test), len(ForceErrors.ROWS)))
    for i, f in enumerate(test):
        graph = batch_graph(ds.positions[f][None], ds.boxes[f][None], top.bead_types, cache, model.cutoff, top.bonds,
                            top.angles, top.dihedrals, dtype=dtype)
        errors = ForceErrors()
        errors.update(model(graph, forces=True)["forces"].detach().double().cpu().numpy(), ds.forces[f])
        sums[i] = errors.sums[:, 0]
    return np.asarray(test), sums
