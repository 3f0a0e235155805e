"""``CGCalculator``: an ASE calculator for a trained cgzoo model (energy, forces, stress), with Verlet-list reuse.

Bead-type convention (the one ``cgzoo convert``/extxyz exports write): every bead is the dummy
element ``X`` and its type name is the per-atom string array ``atoms.arrays["bead_type"]``;
``atoms.arrays["molecule_id"]`` (optional) groups beads into molecules for exclusions. A system
of a single bead type may omit ``bead_type``. Bonded CG topology (bonds, angles, dihedrals) is
given to the calculator, since ASE atoms carry none. Results are in ASE units: eV, eV/Å and
eV/Å³ (Voigt order xx, yy, zz, yz, xz, xy), converted from cgzoo's kcal/mol.

``compiled``: the calculator can run the model compiled (:mod:`cgzoo.models.export`, traced for the
system on the first call) instead of eagerly: ``True`` always (an :class:`~cgzoo.models.export.ExportError`
if the model cannot be compiled), ``False`` never, ``"auto"`` for the families measured faster
compiled (:data:`~cgzoo.models.export.COMPILED_FASTER`), falling back to eager if the export fails.
A file written by ``cgzoo export-model`` is run as it is, compiled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from cgzoo.errors import InputError
from cgzoo.models import CGModel
from cgzoo.models.checkpoint import load_model
from cgzoo.models.export import (
    COMPILED_FASTER,
    ExportedModel,
    ExportError,
    export_model,
    is_exported_file,
    load_exported,
    model_family,
)
from cgzoo.neighbors import TopologyCache, VerletList
from cgzoo.units import KCAL_MOL_TO_EV


def load_any_model(path: str | Path) -> CGModel:
    """A trained checkpoint (``.ckpt``), or a fitted prior (``prior.json`` or its directory) as a prior-only model."""
    path = Path(path)
    if path.suffix == ".json" or (path.is_dir() and (path / "prior.json").exists()):
        from cgzoo.priors import load_prior

        return CGModel(load_prior(path), None, mode="prior_only")
    return load_model(path)


def check_device(device: str | torch.device) -> str:
    """``device`` as a torch device name, or a one-line :class:`InputError` if torch cannot use it on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(None, f"--device {device!r} is not a torch device (cpu, cuda, cuda:N, mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(None, f"--device {device}: torch sees no CUDA GPU here (use --device cpu)")
        if (dev.index or 0) >= torch.cuda.device_count():
            raise InputError(None, f"--device {device}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(None, f"--device {device}: MPS is not available here (use --device cpu)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(None, f"--device {device}: cgzoo runs on cpu, cuda or mps, not {dev.type}")
    return str(dev)


#: values of :class:`CGCalculator`'s ``compiled`` option
COMPILED_CHOICES = (True, False, "auto")


class CGCalculator(Calculator):
    """Evaluate a :class:`~cgzoo.models.CGModel`, a checkpoint, a fitted prior (see :func:`load_any_model`) or a
    compiled model file on ASE ``Atoms``; ``compiled`` as in the module docstring."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(
        self,
        model: CGModel | ExportedModel | str | Path,
        bonds: np.ndarray | None = None,
        angles: np.ndarray | None = None,
        dihedrals: np.ndarray | None = None,
        skin: float = 1.0,
        device: str = "cpu",
        dtype: torch.dtype = torch.float64,
        compiled: bool | str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not any(compiled is choice or compiled == choice for choice in COMPILED_CHOICES):
            raise ValueError(f"compiled must be True, False or 'auto', got {compiled!r}")
        self.device, self.dtype = torch.device(check_device(device)), dtype
        if isinstance(model, (str, Path)) and is_exported_file(model):
            model = load_exported(model, self.device)
        if isinstance(model, ExportedModel):  # a compiled file: its dtype, no eager model to fall back on
            self.model, self.exported, self.dtype = None, model, model.dtype
        else:
            if not isinstance(model, CGModel):
                model = load_any_model(model)
            self.model, self.exported = model.to(device=self.device, dtype=dtype).eval(), None
        self.compile = self.model is not None and (compiled is True or (
            compiled == "auto" and model_family(self.model) in COMPILED_FASTER))
        self.strict = compiled is True
        self.skin = float(skin)
        self.bonded = [torch.as_tensor(np.asarray(a if a is not None else np.zeros((0, k)), dtype=np.int64)).reshape(-1, k).T
                       for a, k in ((bonds, 2), (angles, 3), (dihedrals, 4))]
        self._verlet: VerletList | None = None
        self._types: torch.Tensor | None = None

    def bead_types(self, atoms) -> torch.Tensor:
        """Type indices of ``atoms`` from its ``bead_type`` array, checked against the model's type map."""
        names = self.type_names
        if "bead_type" not in atoms.arrays:
            if len(names) == 1:
                return torch.zeros(len(atoms), dtype=torch.long)
            raise ValueError(f"atoms have no 'bead_type' array; the model has types {names}")
        given = [str(t) for t in atoms.arrays["bead_type"]]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"bead types {unknown} are not in the model's type map {names}")
        index = {n: i for i, n in enumerate(names)}
        return torch.tensor([index[t] for t in given], dtype=torch.long)

    def _setup(self, atoms) -> None:
        if not np.all(atoms.pbc):
            raise ValueError("CGCalculator needs periodic boundaries in all directions (atoms.pbc)")
        self._types = self.bead_types(atoms).to(self.device)
        molecules = np.asarray(atoms.arrays.get("molecule_id", np.arange(len(atoms))), dtype=np.int64)
        bonds = self.bonded[0].T.numpy()
        self._verlet = VerletList(self.cutoff, self.skin, TopologyCache(len(atoms), bonds, molecules))
        self._n = len(atoms)
        if self.model is not None:  # a compiled model is traced for one system: the next call traces this one
            self.exported = None

    @property
    def type_names(self) -> list[str]:
        """The model's bead-type map."""
        return (self.model or self.exported).type_names

    @property
    def cutoff(self) -> float:
        """The model's cutoff (Å): the neighbour list's, before the skin."""
        return (self.model or self.exported).cutoff

    def _compile(self, graph) -> None:
        """Trace the model on this system's first graph; an ``auto`` calculator stays eager if that fails."""
        try:
            self.exported = export_model(self.model, graph)
        except ExportError:
            if self.strict:
                raise
            self.compile = False

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        if self._verlet is None or "numbers" in system_changes or len(self.atoms) != self._n:
            self._setup(self.atoms)
        pos = torch.as_tensor(self.atoms.get_positions(), dtype=self.dtype, device=self.device)
        cell = torch.as_tensor(np.asarray(self.atoms.cell), dtype=self.dtype, device=self.device)
        graph = self._verlet.graph(pos, self._types, cell, *(b.to(self.device) for b in self.bonded))
        if self.compile and self.exported is None:
            self._compile(graph)
        if self.exported is not None:
            out = self.exported(graph, stress="stress" in properties)
        else:
            out = self.model(graph, forces=True, stress="stress" in properties)
        energy = float(out["energy"].detach()[0]) * KCAL_MOL_TO_EV
        self.results["energy"] = self.results["free_energy"] = energy
        self.results["forces"] = out["forces"].detach().cpu().numpy().astype(np.float64) * KCAL_MOL_TO_EV
        if "stress" in out:
            s = out["stress"].detach().cpu().numpy()[0].astype(np.float64) * KCAL_MOL_TO_EV
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])

    @property
    def neighbor_list_builds(self) -> int:
        """How many times the pair list was rebuilt (the rest reused it within the skin)."""
        return 0 if self._verlet is None else self._verlet.n_builds
