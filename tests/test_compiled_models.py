"""Compiled (TorchScript) models = eager models for every registered family, from memory, from disk and in CGCalculator."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from cgzoo.md.calculator import CGCalculator
from cgzoo.models import NETWORKS, CGModel, build_network
from cgzoo.models.export import ExportError, export_model, load_exported, save_exported
from cgzoo.neighbors import CGGraph
from cgzoo.priors import build_prior, save_prior
from cgzoo.testing.cases import BOND_AWARE_CASES, NETWORK_CASES, physics_prior, prior_cases
from cgzoo.testing.networks import model_system
from cgzoo.testing.priors import prior_system
from cgzoo.testing.systems import TYPES, graph_of

ROOT = Path(__file__).parents[1]
WATER = ROOT / "datasets" / "default" / "spce-water_1bead_com.h5"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def network_model(name: str, mode: str, bond_aware: bool) -> CGModel:
    """A small float64 model of network ``name`` (its test case) in ``mode``, over the Δ cases' physics prior."""
    torch.manual_seed(0)
    args = (BOND_AWARE_CASES if bond_aware else NETWORK_CASES)[name]
    return CGModel(physics_prior(), build_network(name, TYPES, **args), mode=mode).double().eval()


def assert_same(compiled: dict[str, torch.Tensor], eager: dict[str, torch.Tensor]) -> None:
    """Energy, forces and stress equal to 1e-10 relative to each quantity's size."""
    for key in ("energy", "forces", "stress"):
        reference = eager[key].detach()
        scale = max(1.0, float(reference.abs().max()))
        torch.testing.assert_close(compiled[key], reference, rtol=0, atol=1e-10 * scale, msg=key)


def frames(system: dict, cutoff: float) -> list[CGGraph]:
    """Each frame of ``system`` as its own one-structure graph (the first is the export's example)."""
    return [graph_of(system, cutoff, frames=slice(k, k + 1), requires_grad=False) for k in range(len(system["positions"]))]


MODEL_CASES = [(name, mode, aware) for name in NETWORKS for mode in ("ml_only", "delta") for aware in (False, True)]


@pytest.mark.parametrize(("name", "mode", "bond_aware"), MODEL_CASES, ids=["-".join(map(str, c)) for c in MODEL_CASES])
def test_every_network_compiles_to_the_eager_model(name, mode, bond_aware, tmp_path):
    """Traced on frame 0, the compiled model gives frame 0's and frame 1's (other pairs) energy, forces, stress; so does its file."""
    model = network_model(name, mode, bond_aware)
    example, other = frames(model_system(), model.cutoff)
    exported = export_model(model, example)
    reloaded = load_exported(save_exported(exported, tmp_path / "model.pt"))
    assert other.edge_index.shape[1] != example.edge_index.shape[1]  # the second frame exercises other sizes
    assert (reloaded.family, reloaded.type_names, reloaded.cutoff, reloaded.dtype) == (name, TYPES, model.cutoff, torch.float64)
    for graph in (example, other):
        eager = model(graph, forces=True, stress=True)
        assert_same(exported(graph, stress=True), eager)
        assert_same(reloaded(graph, stress=True), eager)


@pytest.mark.parametrize("case", sorted(prior_cases()) + ["physics_prior"])
def test_every_prior_compiles_to_the_eager_model(case, tmp_path):
    """Prior-only models of every registered prior case (and the Δ cases' sum of pair and bonded terms) compile exactly."""
    prior = physics_prior() if case == "physics_prior" else build_prior(prior_cases()[case], TYPES)
    model = CGModel(prior, None, mode="prior_only").double()
    example, other = frames(prior_system(), max(model.cutoff, 1.0))
    reloaded = load_exported(save_exported(export_model(model, example), tmp_path / "prior.pt"))
    assert reloaded.family == "prior_only"
    for graph in (example, other):
        assert_same(reloaded(graph, stress=True), model(graph, forces=True, stress=True))


def test_the_file_loads_with_torch_alone(tmp_path):
    """The archive is plain TorchScript: a fresh interpreter with torch and no cgzoo import runs its forward."""
    model = network_model("schnet", "delta", False)
    graph = frames(model_system(), model.cutoff)[1]
    path = save_exported(export_model(model, frames(model_system(), model.cutoff)[0]), tmp_path / "m.pt")
    torch.save({k: getattr(graph, k) for k in ("pos", "cell", "bead_type", "edge_index", "edge_shift", "edge_sep",
                                                "bond_index", "angle_index", "dihedral_index")}, tmp_path / "graph.pt")
    script = ("import sys, torch; g = torch.load(sys.argv[2]); m = torch.jit.load(sys.argv[1]); "
              "out = m(g['pos'], g['cell'][0], g['bead_type'], g['edge_index'], g['edge_shift'], g['edge_sep'], "
              "g['bond_index'], g['angle_index'], g['dihedral_index'], True); "
              "assert 'cgzoo' not in sys.modules; torch.save(out, sys.argv[3])")
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "graph.pt"), str(tmp_path / "out.pt")],
                   check=True, cwd=tmp_path)
    assert_same(torch.load(tmp_path / "out.pt"), model(graph, forces=True, stress=True))


def test_a_network_the_trace_cannot_hold_fails_in_one_line(monkeypatch):
    """A plugin network whose energy reads a size as a Python number: the export's second configuration catches it."""
    monkeypatch.setenv("CGZOO_PLUGINS", "user_network")
    net = build_network("user_network.PairCountNet", TYPES, cutoff=6.0)
    model = CGModel(None, net, mode="ml_only").double()
    example = frames(model_system(), model.cutoff)[0]
    with pytest.raises(ExportError, match=r"^user_network\.PairCountNet: the compiled model is not the eager one on a "
                                          r"second configuration \(energy differs by .*torch\.jit\.trace fixes$") as err:
        export_model(model, example)
    assert "\n" not in str(err.value)


def test_an_export_needs_one_structure():
    model = network_model("pair_mlp", "ml_only", False)
    both = graph_of(model_system(), model.cutoff, requires_grad=False)
    with pytest.raises(ExportError, match="^pair_mlp: the example for an export must be one structure, got 2$"):
        export_model(model, both)


def water_atoms():
    """The first frame of the default CG water as ASE atoms (300 beads)."""
    from cgzoo.data.start import load_start

    return load_start(f"{WATER}@0")[0]


def water_model() -> CGModel:
    torch.manual_seed(0)
    prior = build_prior({"class_path": "lennard_jones", "init_args": {"type_names": ["W"], "cutoff": 6.0,
                                                                       "params": {"W-W": {"sigma": 3.0, "epsilon": 0.5}}}})
    return CGModel(prior, build_network("pair_mlp", ["W"], **NETWORK_CASES["pair_mlp"]), mode="delta")


def calculator_results(calc: CGCalculator, moves: int = 3) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Energy, forces and stress of the water frame and of ``moves`` later configurations (Verlet list reused)."""
    atoms = water_atoms()
    atoms.calc = calc
    rng = np.random.default_rng(1)
    out = []
    for _ in range(moves + 1):
        out.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
        atoms.set_positions(atoms.get_positions() + rng.uniform(-0.05, 0.05, (len(atoms), 3)))
    return out


def assert_same_results(a: list, b: list) -> None:
    for (e1, f1, s1), (e2, f2, s2) in zip(a, b, strict=True):
        assert abs(e1 - e2) <= 1e-10 * max(1.0, abs(e2))
        np.testing.assert_allclose(f1, f2, rtol=0, atol=1e-10 * max(1.0, np.abs(f2).max()))
        np.testing.assert_allclose(s1, s2, rtol=0, atol=1e-10 * max(1.0, np.abs(s2).max()))


def test_calculator_runs_the_compiled_model_as_the_eager_one(tmp_path):
    """compiled=True traces on the first call; its MD-style calls (moved beads, reused pairs) equal compiled=False's."""
    model = water_model()
    eager = calculator_results(CGCalculator(model, compiled=False))
    compiled = CGCalculator(model, compiled=True)
    assert_same_results(calculator_results(compiled), eager)
    assert compiled.exported is not None and compiled.exported.family == "pair_mlp"


def test_export_model_command_writes_a_file_the_calculator_runs(tmp_path):
    """``cgzoo export-model PRIOR --start DATA@0 --out m.pt``: the calculator on m.pt = the calculator on the prior."""
    prior = save_prior(water_model().prior, tmp_path / "prior.json")
    out = tmp_path / "m.pt"
    proc = subprocess.run([sys.executable, "-m", "cgzoo.cli", "export-model", str(prior), "--start", f"{WATER}@0",
                           "--out", str(out)], check=False, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "prior_only compiled for" in proc.stdout
    assert_same_results(calculator_results(CGCalculator(out)), calculator_results(CGCalculator(prior, compiled=False)))
    again = subprocess.run([sys.executable, "-m", "cgzoo.cli", "export-model", str(prior), "--start", f"{WATER}@0",
                            "--out", str(out)], check=False, capture_output=True, text=True, cwd=ROOT)
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1


def test_calculator_refuses_a_bad_compiled_option():
    with pytest.raises(ValueError, match="compiled must be True, False or 'auto', got 'yes'"):
        CGCalculator(water_model(), compiled="yes")


def test_auto_compiles_only_the_families_measured_faster():
    """``compiled="auto"`` (the default) traces pair_mlp (in COMPILED_FASTER) and leaves SchNet (not in it) eager."""
    from cgzoo.models.export import COMPILED_FASTER

    assert "pair_mlp" in COMPILED_FASTER and "schnet" not in COMPILED_FASTER
    schnet = CGModel(water_model().prior, build_network("schnet", ["W"], **NETWORK_CASES["schnet"]), mode="delta")
    for model, compiled in ((water_model(), True), (schnet, False)):
        calc = CGCalculator(model)
        calculator_results(calc, moves=0)
        assert (calc.exported is not None) == compiled
