"""What ``cgzoo predict`` writes: the model's energy and forces on every predicted frame, in one HDF5 file per run.

Lightning's predict loop only collects the outputs of ``predict_step``; :class:`PredictionWriter` (a
``BasePredictionWriter`` callback, the ``--predictions`` section of the CLI) writes them when the
loop ends, by rename, to ``--predictions.path`` (default ``<default_root_dir>/predictions.h5``)::

    predictions.h5                attributes: energy_unit "kcal/mol", force_unit "kcal/mol/Å", checkpoint
      dataset_<k>/                one group per file of --data.data, in its order; attribute: path
        frame             (F,)        int64    the frame's index in that dataset file, ascending
        energy            (F,)        float64  model energy of the frame, kcal/mol
        forces            (F, N, 3)   float64  model forces on its N beads, kcal/mol/Å
        reference_forces  (F, N, 3)   float64  the dataset's (mapped reference) forces, kcal/mol/Å

A path ending in ``.extxyz``/``.xyz`` gets extended XYZ instead, in the convention of
:mod:`cgzoo.data.export` (ASE units: the model's energy in eV and forces in eV/Å as the frame's
single-point result; ``dataset`` and ``frame`` in ``atoms.info``), every frame of every dataset in turn.

The frames are the data module's test split (those a model is scored on). Under DDP each process
writes the frames it predicted to ``<stem>.rank<r><suffix>``: the frame indices say where each belongs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import BasePredictionWriter

from cgzoo.data.dataset import EXTXYZ_SUFFIXES, CGDataset
from cgzoo.outputs import replace_file
from cgzoo.units import KCAL_MOL_TO_EV

ENERGY_UNIT = "kcal/mol"
FORCE_UNIT = "kcal/mol/Å"
DEFAULT_NAME = "predictions.h5"


def frame_predictions(outputs: list[dict[str, Any]]) -> dict[int, dict[str, np.ndarray]]:
    """The per-batch outputs of ``predict_step`` regrouped per dataset, frames in ascending order.

    Each output holds ``energy`` (B,), ``forces`` and ``reference`` (N_total, 3), ``batch`` (N_total,) and the
    frames' ``frame`` and ``dataset_id`` (B,).
    """
    rows: dict[int, list[tuple[int, float, np.ndarray, np.ndarray]]] = defaultdict(list)
    for out in outputs:
        batch = out["batch"].cpu().numpy()
        forces, reference = (out[key].detach().double().cpu().numpy() for key in ("forces", "reference"))
        for g, (frame, dataset, energy) in enumerate(zip(out["frame"].tolist(), out["dataset_id"].tolist(),
                                                         out["energy"].detach().double().cpu().tolist())):
            beads = batch == g
            rows[int(dataset)].append((int(frame), float(energy), forces[beads], reference[beads]))
    grouped = {}
    for dataset, frames in sorted(rows.items()):
        frames.sort(key=lambda row: row[0])
        grouped[dataset] = {"frame": np.array([r[0] for r in frames], dtype=np.int64),
                            "energy": np.array([r[1] for r in frames], dtype=np.float64),
                            "forces": np.stack([r[2] for r in frames]),
                            "reference_forces": np.stack([r[3] for r in frames])}
    return grouped


def write_predictions(path: Path, grouped: dict[int, dict[str, np.ndarray]], sources: list[str],
                      checkpoint: str | None) -> Path:
    """Write the layout of the module docstring to ``path`` (by rename: a killed run leaves no partial file)."""
    import h5py

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as handle:
            handle.attrs.update(energy_unit=ENERGY_UNIT, force_unit=FORCE_UNIT, checkpoint=checkpoint or "")
            for dataset, arrays in grouped.items():
                group = handle.create_group(f"dataset_{dataset}")
                group.attrs["path"] = sources[dataset] if dataset < len(sources) else ""
                for name, values in arrays.items():
                    group.create_dataset(name, data=values)

    path.parent.mkdir(parents=True, exist_ok=True)
    return replace_file(path, write)


def write_predictions_extxyz(path: Path, grouped: dict[int, dict[str, np.ndarray]], datasets: list[CGDataset]) -> Path:
    """Write the predicted frames as extended XYZ (module docstring), positions and cells from ``datasets``."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from cgzoo.data.export import frame_to_atoms

    frames = []
    for dataset, arrays in grouped.items():
        predicted = replace(datasets[dataset].subset(arrays["frame"]), forces=arrays["forces"])
        for k, (frame, energy) in enumerate(zip(arrays["frame"].tolist(), arrays["energy"].tolist())):
            atoms = frame_to_atoms(predicted, k)
            atoms.calc = SinglePointCalculator(atoms, energy=energy * KCAL_MOL_TO_EV, forces=atoms.calc.results["forces"])
            atoms.info.update(dataset=dataset, frame=frame)
            frames.append(atoms)
    path.parent.mkdir(parents=True, exist_ok=True)
    return replace_file(path, lambda tmp: write(str(tmp), frames, format="extxyz"))


class PredictionWriter(BasePredictionWriter):
    """Writes the per-frame energies and forces of ``cgzoo predict`` to HDF5 (layout: :mod:`cgzoo.training.predictions`)."""

    def __init__(self, path: str | None = None) -> None:
        """Collect the predictions and write them once the predict loop has finished.

        Args:
            path: the file ``cgzoo predict`` writes, HDF5 or, ending in ``.extxyz``, extended XYZ; default
                ``<default_root_dir>/predictions.h5``.
        """
        super().__init__(write_interval="epoch")
        self.path = path

    def output_path(self, trainer: Trainer) -> Path:
        """Where this process writes: ``path``, or the run directory's ``predictions.h5``; ``.rank<r>`` under DDP."""
        path = Path(self.path) if self.path else Path(trainer.default_root_dir) / DEFAULT_NAME
        if trainer.world_size > 1:
            path = path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")
        return path

    def write_on_epoch_end(self, trainer: Trainer, pl_module: LightningModule, predictions: Any,
                           batch_indices: Any) -> None:
        outputs = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        grouped, path = frame_predictions(outputs), self.output_path(trainer)
        if path.suffix.lower() in EXTXYZ_SUFFIXES:
            write_predictions_extxyz(path, grouped, trainer.datamodule.datasets)
            return
        sources = [str(p) for p in getattr(trainer.datamodule, "data_paths", [])]
        checkpoint = trainer.ckpt_path
        write_predictions(path, grouped, sources, None if checkpoint is None else str(checkpoint))
