"""Inference export of a :class:`~cgzoo.models.CGModel`: one TorchScript file giving energy, forces and stress.

Route, and why: the energy of the model as a function of plain tensors (positions, cell, bead types,
the half neighbour list with its image shifts and bond separations, the bonded index lists) is
recorded by ``torch.jit.trace`` on an example structure, and a small scripted module around it
(:class:`CompiledModel`) takes forces and stress by ``torch.autograd.grad``, exactly as
:func:`cgzoo.forces.energy_derivatives` does. The alternatives fail somewhere in this environment
(torch 2.13, e3nn 0.6, PyG 2.8): ``torch.jit.script`` of the model itself fails at the first
annotation it does not know and would need every family rewritten for TorchScript (``CGGraph``, the
numpy/torch geometry helpers, the priors' type tables and error messages, the PyG and e3nn layers);
``torch.export`` with dynamic sizes stops at the data-dependent sizes of the cutoff masks
(``GuardOnDataDependentSymNode`` in the priors' parameter checks), and its programs are not what
openmm-torch or the LAMMPS plugins load; ``torch.compile`` writes no file at all.
A trace records the tensor operations of one call, so sizes flow through it (edge and bead counts
may change from call to call) but Python branches are fixed as they ran on the example: which
bonded lists are empty, the one-structure batch, the type checks of the priors' tables. Hence an
export is made *for a system* (its topology), and :func:`export_model` checks the compiled model
against the eager one on the example and on a second configuration (beads moved, a third of the
pairs dropped); a network whose energy depends on a size or value the trace fixed fails that check
with a one-line :class:`ExportError`, as does one ``torch.jit.trace`` cannot record.

The file loads with ``torch.jit.load`` alone (no cgzoo, no Python needed); its ``forward`` is
:meth:`CompiledModel.forward`, and a ``cgzoo.json`` extra file names the type map, cutoff, family
and dtype for :func:`load_exported`. TorchScript is deprecated in torch 2.13 but remains what
openmm-torch and the LAMMPS ML plugins load; its deprecation warnings are silenced here.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cgzoo.errors import CGZooError, InputError
from cgzoo.forces import apply_strain, strain_stress
from cgzoo.models.base import CGModel
from cgzoo.models.registry import network_spec
from cgzoo.neighbors import CGGraph

#: ``format`` tag of the ``cgzoo.json`` extra file of an exported model
EXPORT_FORMAT = "cgzoo-compiled-model"
#: name of that extra file inside the TorchScript archive
EXTRA_FILE = "cgzoo.json"
#: families whose compiled model was at least 5 % faster than the eager one on average over three runs (eager /
#: compiled per force call on 300 beads: prior only 1.11, pair_mlp 1.06, SchNet 1.03, equivariant 0.83; see
#: experiments/benchmarks/RESULTS.md): the ASE calculator's ``compiled="auto"`` compiles these only
COMPILED_FASTER: frozenset[str] = frozenset({"prior_only", "pair_mlp"})


class ExportError(CGZooError, ValueError):
    """A model that cannot be compiled, with the one-line reason."""


def model_family(model: CGModel) -> str:
    """The model's family: its network's registered name (a plugin's dotted path), or ``prior_only``."""
    return "prior_only" if model.net is None else network_spec(model.net)["name"]


class _TensorEnergy(torch.nn.Module):
    """The model's energy of one structure as a function of plain tensors, the signature ``torch.jit.trace`` records."""

    def __init__(self, model: CGModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pos: torch.Tensor, cell: torch.Tensor, bead_type: torch.Tensor, edge_index: torch.Tensor,
                edge_shift: torch.Tensor, edge_sep: torch.Tensor, bond_index: torch.Tensor, angle_index: torch.Tensor,
                dihedral_index: torch.Tensor) -> torch.Tensor:
        graph = CGGraph(pos=pos, bead_type=bead_type, cell=cell, batch=torch.zeros_like(bead_type),
                        edge_index=edge_index, edge_shift=edge_shift, edge_sep=edge_sep, cutoff=self.model.cutoff,
                        bond_index=bond_index, angle_index=angle_index, dihedral_index=dihedral_index)
        return self.model.energy(graph)


class CompiledModel(torch.nn.Module):
    """Scripted around a traced energy: one structure's energy (1,), forces (N,3) and optionally stress (1,3,3).

    Inputs are those of a one-structure :class:`~cgzoo.neighbors.CGGraph` in its units (Å, kcal/mol):
    ``pos`` (N,3), ``cell`` (3,3) rows = lattice vectors, ``bead_type`` (N,), the half neighbour list
    ``edge_index`` (2,E) with image ``edge_shift`` (E,3) and ``edge_sep`` (E,), and the bonded lists.
    Pairs beyond the model's cutoff may be included (a Verlet skin): the model masks them itself.
    Call it with gradients enabled (TorchScript cannot switch them on): forces are its own gradient.
    """

    def __init__(self, energy: torch.nn.Module, type_names: list[str], cutoff: float) -> None:
        super().__init__()
        self.energy = energy
        self.type_names = list(type_names)
        self.cutoff = float(cutoff)

    def forward(self, pos: torch.Tensor, cell: torch.Tensor, bead_type: torch.Tensor, edge_index: torch.Tensor,
                edge_shift: torch.Tensor, edge_sep: torch.Tensor, bond_index: torch.Tensor, angle_index: torch.Tensor,
                dihedral_index: torch.Tensor, stress: bool = False) -> dict[str, torch.Tensor]:
        cell = cell.reshape(1, 3, 3)
        pos = pos.detach().requires_grad_(True)
        wrt = [pos]
        strained_pos, strained_cell = pos, cell
        if stress:
            strain = torch.zeros_like(cell).requires_grad_(True)
            strained_pos, strained_cell = apply_strain(pos, cell, torch.zeros_like(bead_type), strain)
            wrt.append(strain)
        energy = self.energy(strained_pos, strained_cell, bead_type, edge_index, edge_shift, edge_sep,
                             bond_index, angle_index, dihedral_index)
        grads = torch.autograd.grad([energy.sum()], wrt, allow_unused=True)
        force_grad = grads[0]
        out = {"energy": energy.detach(),
               "forces": -force_grad if force_grad is not None else torch.zeros_like(pos)}
        if stress:
            strain_grad = grads[1]
            out["stress"] = strain_stress(strain_grad, cell) if strain_grad is not None else torch.zeros_like(cell)
        return out


@dataclass
class ExportedModel:
    """A compiled model with what a caller needs to feed it: its type map, cutoff, family and dtype."""

    module: torch.jit.ScriptModule
    type_names: list[str]
    cutoff: float
    family: str
    dtype: torch.dtype

    def __call__(self, graph: CGGraph, stress: bool = False) -> dict[str, torch.Tensor]:
        """Energy, forces and (with ``stress``) stress of a one-structure graph, as :class:`CGModel` returns them.

        The module runs in TorchScript's plain interpreter: the profiling executor re-specialises its graph
        as the number of pairs within the cutoff changes from step to step, which made networks up to twice as
        slow as eager in ``experiments/benchmarks/compiled_model.py``.
        """
        if graph.n_structures != 1:
            raise ValueError(f"a compiled model evaluates one structure at a time, got {graph.n_structures}")
        with torch.enable_grad(), torch.jit.optimized_execution(False):
            return self.module(graph.pos, graph.cell[0], graph.bead_type, graph.edge_index, graph.edge_shift,
                               graph.edge_sep, graph.bond_index, graph.angle_index, graph.dihedral_index, stress)

    def metadata(self) -> dict[str, Any]:
        """The ``cgzoo.json`` block saved with the module."""
        return {"format": EXPORT_FORMAT, "version": 1, "type_names": self.type_names, "cutoff": self.cutoff,
                "family": self.family, "dtype": str(self.dtype).removeprefix("torch."), "torch": torch.__version__}


@contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence TorchScript's deprecation notices and trace warnings (the export checks the trace itself)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def _graph_tensors(graph: CGGraph) -> tuple[torch.Tensor, ...]:
    """The traced energy's inputs for a one-structure graph."""
    return (graph.pos.detach(), graph.cell.detach(), graph.bead_type, graph.edge_index, graph.edge_shift,
            graph.edge_sep, graph.bond_index, graph.angle_index, graph.dihedral_index)


def _second_configuration(graph: CGGraph) -> CGGraph:
    """The example with beads moved up to 0.05 Å and every third pair dropped: other values and sizes than traced."""
    generator = torch.Generator().manual_seed(0)
    jitter = 0.05 * (2 * torch.rand(graph.pos.shape, generator=generator, dtype=torch.float64) - 1)
    keep = torch.arange(graph.edge_index.shape[1], device=graph.edge_index.device) % 3 != 2
    return CGGraph(**{**graph.__dict__, "pos": graph.pos.detach() + jitter.to(graph.pos),
                      "edge_index": graph.edge_index[:, keep], "edge_shift": graph.edge_shift[keep],
                      "edge_sep": graph.edge_sep[keep]})


def _worst_mismatch(compiled: ExportedModel, model: CGModel, graph: CGGraph) -> str | None:
    """``None`` if the compiled and eager results agree on ``graph``, else which quantity differs and by how much."""
    eager = model(graph, forces=True, stress=True)
    try:
        result = compiled(graph, stress=True)
    except RuntimeError as exc:  # e.g. a size the trace fixed meeting another one
        return f"it fails: {(str(exc).strip().splitlines() or [''])[0][:200]}"
    tol = 1e-10 if graph.pos.dtype == torch.float64 else 1e-4
    for key in ("energy", "forces", "stress"):
        reference = eager[key].detach()
        diff = float((result[key] - reference).abs().max()) if reference.numel() else 0.0
        if not diff <= tol * max(1.0, float(reference.abs().max()) if reference.numel() else 0.0):
            return f"{key} differs by {diff:.3g}"
    return None


def export_model(model: CGModel, graph: CGGraph) -> ExportedModel:
    """The compiled ``model`` for the system of the one-structure ``graph`` (its topology and dtype), checked.

    ``ExportError`` (one line) when the model cannot be traced, or when the compiled model differs
    from the eager one on the example or on a second configuration of it (see module docstring).
    """
    family = model_family(model)
    if graph.n_structures != 1:
        raise ExportError(f"{family}: the example for an export must be one structure, got {graph.n_structures}")
    try:
        with _quiet_jit():
            traced = torch.jit.trace(_TensorEnergy(model), _graph_tensors(graph), check_trace=False)
            module = torch.jit.script(CompiledModel(traced, model.type_names, model.cutoff))
    except Exception as exc:  # noqa: BLE001 - tracing a user's network can fail with any exception type
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ExportError(f"{family}: torch.jit cannot compile this model ({type(exc).__name__}: {first})") from None
    exported = ExportedModel(module, list(model.type_names), float(model.cutoff), family, graph.pos.dtype)
    for label, probe in (("the example", graph), ("a second configuration", _second_configuration(graph))):
        problem = _worst_mismatch(exported, model, probe)
        if problem:
            raise ExportError(f"{family}: the compiled model is not the eager one on {label} ({problem}); its forward "
                              "depends on a size or value that torch.jit.trace fixes")
    return exported


def save_exported(exported: ExportedModel, path: str | Path) -> Path:
    """Write the TorchScript archive with its ``cgzoo.json`` block; returns the path."""
    path = Path(path)
    with _quiet_jit():
        torch.jit.save(exported.module, str(path), _extra_files={EXTRA_FILE: json.dumps(exported.metadata())})
    return path


def is_exported_file(path: str | Path) -> bool:
    """Whether ``path`` is a TorchScript archive written by :func:`save_exported` (checkpoints are zip files too)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith(f"/extra/{EXTRA_FILE}") for name in archive.namelist())


def load_exported(path: str | Path, device: str | torch.device = "cpu") -> ExportedModel:
    """A model written by :func:`save_exported`; one-line :class:`InputError` for anything else."""
    path = Path(path)
    if not is_exported_file(path):
        raise InputError(path, "not a compiled cgzoo model (no cgzoo.json in a TorchScript archive)")
    extra = {EXTRA_FILE: ""}
    try:
        with _quiet_jit():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        meta = json.loads(extra[EXTRA_FILE])
    except (RuntimeError, ValueError) as exc:
        raise InputError(path, f"unreadable compiled model ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise InputError(path, f"not a compiled cgzoo model ({EXTRA_FILE} has no {EXPORT_FORMAT!r} tag)")
    try:
        return ExportedModel(module, [str(n) for n in meta["type_names"]], float(meta["cutoff"]), str(meta["family"]),
                             getattr(torch, str(meta["dtype"])))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(path, f"{EXTRA_FILE} is incomplete ({type(exc).__name__}: {exc})") from None
