"""``cgzoo export``: a model and a start structure as files an MD engine runs as written, with the tabulation error.

The directory holds the engine's files (:func:`cgzoo.engines.openmm.export`,
:func:`cgzoo.engines.lammps.export`, :func:`cgzoo.engines.gromacs.export`) and ``export.json``: the model, the engine, the settings, the
tabulation error of every table (max |ΔF| and |ΔU| against the model's own terms at the grid
midpoints) and on frames (max and RMS |ΔF|, max |ΔE| of the tabulated model against the torch
model on up to ``frames`` frames of the start dataset, or on the start structure).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cgzoo.data.start import load_start
from cgzoo.engines.base import exporter_module
from cgzoo.engines.tables import (
    NotRepresentable,
    frame_force_error,
    pair_table_name,
    tabulation_error,
    untabulable_reason,
    write_engine_tables,
)
from cgzoo.errors import InputError, check_output_path
from cgzoo.md.calculator import CGCalculator, load_any_model
from cgzoo.md.integrators import prepare_engine
from cgzoo.md.settings import SimulationSettings
from cgzoo.models.base import CGModel
from cgzoo.models.export import ExportedModel, save_exported
from cgzoo.outputs import atomic_dir, check_owned_dir


def export_model(model: str | Path, start: str, engine: str, out: str | Path, settings: SimulationSettings | None = None,
                 frames: int = 10, overwrite: bool = False) -> dict:
    """Write the engine files for ``model`` on ``start`` into ``out``; returns the ``export.json`` content."""
    out = check_output_path(out, overwrite)
    check_owned_dir(out, "export.json", "export directory")
    if frames < 1:
        raise InputError(None, f"--frames must be at least 1, got {frames}")
    s = (settings or SimulationSettings()).model_copy()
    s.steps = s.target_steps()
    module = exporter_module(engine)
    atoms, calc, system, split = _tabulated(model, start, f"no {engine} file can hold it; run it with cgzoo simulate "
                                                         "--engine openmm (a Python force) or --engine ase")
    positions, boxes = _frames(start, atoms, frames)
    keys = system.keys()
    report = {
        "model": str(model), "engine": engine, "start": start, "settings": {k: getattr(s, k) for k in (
            "ensemble", "temperature_K", "pressure_bar", "timestep_fs", "steps", "save_every", "friction_per_ps",
            "barostat", "seed")},
        "type_names": split.type_names,
        "pair_exclusions": [{"exclude": t.exclude, "intramolecular": t.intramolecular} for t in split.pairs],
        "energy_offset_kcal_mol": split.offset(system.bead_types),
        "tabulation_error": tabulation_error(split, calc.model, keys, system.excluded_pairs),
        "frame_error": frame_force_error(split, calc.model, positions, boxes, system.bead_types, system.molecule_ids,
                                         system.terms),
        "units": "errors: forces kcal/mol/Å (bonds, pairs) or kcal/mol/rad (angles, dihedrals), energies kcal/mol",
    }
    # a killed or failed export leaves no partial ``out``; --overwrite replaces only a previous export
    with atomic_dir(out, overwrite, marker="export.json", what="export directory") as tmp:
        files = module.export(split, system, tmp, s)
        report["files"] = [p.name for p in files]
        (tmp / "export.json").write_text(json.dumps(report, indent=1))
    return report


def export_model_tables(model: str | Path, start: str, out: str | Path, formats: list[str], network_only: bool = False,
                        overwrite: bool = False) -> dict:
    """``cgzoo export-tables``: the engine tables of ``model`` (every pair-additive part summed per kind, a ``pair_mlp``
    included; with ``network_only`` its network's pair energy alone) for the system of ``start`` (its bead types, bonded
    terms and exclusions), in each of ``formats`` under ``out/<format>/``; returns ``tables.json``'s content.

    The ``table_file`` prior reads them back (``datasets/priors/README.md``). A graph network is refused in one line.
    """
    out = check_output_path(out, overwrite)
    check_owned_dir(out, "tables.json", "tables directory")
    loaded = load_any_model(model)
    if network_only:
        if loaded.net is None:
            raise InputError(Path(model), "has no network; --network-only exports a network's pair energy")
        loaded = CGModel(None, loaded.net, mode="ml_only", energy_scale=float(loaded.energy_scale),
                         type_shift=loaded.type_shift.tolist())
    _, calc, system, split = _tabulated(loaded, start, "no table holds it", label=model)
    report = {
        "model": str(model), "start": start, "network_only": network_only, "formats": formats,
        "type_names": split.type_names,
        "pair_tables": [{"name": pair_table_name(split, k), "exclude": t.exclude, "intramolecular": t.intramolecular}
                        for k, t in enumerate(split.pairs)],
        "energy_offset_kcal_mol": split.offset(system.bead_types),
        "tabulation_error": tabulation_error(split, calc.model, system.keys(), system.excluded_pairs),
    }
    with atomic_dir(out, overwrite, marker="tables.json", what="tables directory") as tmp:
        files = [p for fmt in formats for p in write_engine_tables(split, tmp / fmt, fmt)]
        report["files"] = [str(p.relative_to(tmp)) for p in files]
        (tmp / "tables.json").write_text(json.dumps(report, indent=1))
    return report


def _tabulated(model: str | Path | CGModel, start: str, refusal: str, label: str | Path | None = None):
    """The start structure with the model's calculator, and the engine view of the run (system, tables); a model with a
    part no table holds is refused in one line ending in ``refusal``."""
    atoms, topology = load_start(start)
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"])
    atoms.calc = calc
    calc.bead_types(atoms)
    system, split = prepare_engine(calc, atoms, topology)
    if split.network is not None:
        raise NotRepresentable(f"{label if label is not None else model}: {untabulable_reason(split.network.net)}, "
                               f"so {refusal}")
    return atoms, calc, system, split


def _frames(start: str, atoms, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` evenly spaced frames of the start dataset, or the start structure itself."""
    path = Path(start.partition("@")[0])
    if path.suffix.lower() not in (".h5", ".hdf5"):
        return atoms.get_positions()[None], np.asarray(atoms.cell)[None]
    from cgzoo.data.dataset import CGDataset

    ds = CGDataset.load(path)
    if ds.n_beads != len(atoms):
        raise InputError(path, f"{ds.n_beads} beads, start structure has {len(atoms)}")
    pick = np.unique(np.linspace(0, ds.n_frames - 1, min(n, ds.n_frames)).round().astype(int))
    return ds.positions[pick].astype(np.float64), ds.boxes[pick].astype(np.float64)


def export_compiled(model: str | Path, start: str, out: str | Path, overwrite: bool = False) -> ExportedModel:
    """``cgzoo export-model``: ``model`` compiled for the system of ``start`` (its bonded topology; see
    :mod:`cgzoo.models.export`) and written to ``out``, a TorchScript file ``CGCalculator`` and ``torch.jit.load`` read."""
    out = check_output_path(out, overwrite)
    atoms, topology = load_start(start)
    calc = CGCalculator(model, topology["bonds"], topology["angles"], topology["dihedrals"], compiled=True)
    atoms.calc = calc
    atoms.get_forces()  # the first call traces the model on this structure and checks it against the eager one
    save_exported(calc.exported, out)
    return calc.exported
