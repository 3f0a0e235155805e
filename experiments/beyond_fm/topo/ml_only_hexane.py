"""ML-only pair_mlp with and without ``bond_aware`` on CG hexane: held-out force errors of the same training.

A small, CPU-sized comparison (issue 12: ML-only models get the molecular topology): the same
network, seed, frames and optimiser steps, trained on forces alone (no prior), once blind to the
bond graph and once with each pair's bond-separation class. Frames for training come from the
first half of the trajectory, held-out frames from the second. It also records the range of pair
distances per bond-separation class, which says where a plain pair function must confuse a bond
with a contact (where the classes' distances overlap). Writes ``results.json`` and
``results.md`` to ``--out``.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python experiments/beyond_fm/topo/ml_only_hexane.py \\
        --data $CGZOO_BEYOND_FM_DATA/topo/hexane3.h5 --out experiments/beyond_fm/topo
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from cgzoo.data.dataset import CGDataset
from cgzoo.metrics import ForceErrors
from cgzoo.models import SEPARATION_CLASSES, CGModel, build_network, separation_one_hot
from cgzoo.neighbors import TopologyCache, batch_graph
from cgzoo.outputs import output_lock, write_atomic, write_json_atomic


def graph(ds: CGDataset, frames: np.ndarray, cutoff: float, cache: TopologyCache):
    """Float32 graph of ``frames`` of ``ds`` with positions requiring gradients (forces by autograd)."""
    top = ds.topology
    return batch_graph(ds.positions[frames], ds.boxes[frames], top.bead_types, cache, cutoff, top.bonds,
                       dtype=torch.float32, requires_grad=True)


def separation_ranges(ds: CGDataset, cutoff: float, frames: int = 5) -> dict[str, dict[str, float]]:
    """Pair distances (Å) within ``cutoff`` per bond-separation class over the first ``frames`` frames:
    count, minimum, 1st percentile, median, 99th percentile, maximum."""
    top = ds.topology
    g = graph(ds, np.arange(frames), cutoff, TopologyCache(top.n_beads, top.bonds, top.molecule_ids))
    r = torch.linalg.norm(g.edge_vectors(), dim=-1).detach().numpy()
    classes = separation_one_hot(g.edge_sep, torch.float32).argmax(dim=1).numpy()
    ranges = {}
    for k, name in enumerate(SEPARATION_CLASSES):
        x = r[classes == k]
        if len(x):
            q = np.percentile(x, [0, 1, 50, 99, 100])
            ranges[name] = {"pairs": len(x), **{key: round(float(v), 2) for key, v in zip(("min", "p1", "median", "p99", "max"), q)}}
    return ranges


def train_and_test(ds: CGDataset, bond_aware: bool, args: argparse.Namespace) -> dict:
    """Train an ML-only pair_mlp for ``args.steps`` Adam steps on the training frames; its held-out force errors."""
    top = ds.topology
    cache = TopologyCache(top.n_beads, top.bonds, top.molecule_ids)
    half = ds.n_frames // 2
    train = np.linspace(0, half - 1, args.train_frames).round().astype(int)
    test = np.linspace(half, ds.n_frames - 1, args.test_frames).round().astype(int)
    torch.manual_seed(args.seed)
    net = build_network("pair_mlp", top.type_names, cutoff=args.cutoff, n_rbf=32, hidden=[64, 64], embedding_dim=16,
                        bond_aware=bond_aware)
    scale = float(np.sqrt(np.mean(ds.forces[train].astype(np.float64) ** 2)))  # O(1) forces for the network
    model = CGModel(None, net, mode="ml_only", energy_scale=scale)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    reference = torch.as_tensor(ds.forces[train].reshape(-1, 3), dtype=torch.float32)
    start = time.perf_counter()
    model.train()
    for step in range(args.steps):
        batch = np.random.default_rng(step).choice(len(train), args.batch, replace=False)
        rows = (batch[:, None] * top.n_beads + np.arange(top.n_beads)).reshape(-1)
        optimiser.zero_grad()
        loss = ((model(graph(ds, train[batch], args.cutoff, cache))["forces"] - reference[rows]) ** 2).mean() / scale**2
        loss.backward()
        optimiser.step()
    model.eval()
    errors = ForceErrors(len(top.type_names))
    for frame in test:
        predicted = model(graph(ds, np.array([frame]), args.cutoff, cache))["forces"].detach().double().numpy()
        errors.update(predicted, ds.forces[frame].astype(np.float64), top.bead_types)
    summary = errors.as_dict(top.type_names)
    summary["reference_force_rms"] = errors.total().reference_rms
    summary["train_seconds"] = round(time.perf_counter() - start, 1)
    summary["parameters"] = sum(p.numel() for p in net.parameters())
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="a CG dataset with bonds (e.g. hexane 3-bead)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--cutoff", type=float, default=7.0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--train-frames", type=int, default=50)
    parser.add_argument("--test-frames", type=int, default=20)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = CGDataset.load(args.data)
    results = {"data": str(args.data), "settings": {k: v for k, v in vars(args).items() if k not in ("data", "out")},
               "distances_by_separation": separation_ranges(ds, args.cutoff),
               "plain": train_and_test(ds, False, args), "bond_aware": train_and_test(ds, True, args)}
    lines = ["| pair_mlp, ML-only | held-out force RMSE (kcal/mol/Å) | R² | train s |", "|---|---|---|---|"]
    for name in ("plain", "bond_aware"):
        r = results[name]
        lines.append(f"| {name} | {r['force_rmse']:.3f} | {r['force_r2']:.3f} | {r['train_seconds']} |")
    lines.append(f"\nreference force RMS {results['plain']['reference_force_rms']:.3f} kcal/mol/Å; "
                 f"{args.train_frames} training frames (first half), {args.test_frames} held-out (second half), "
                 f"{args.steps} Adam steps of {args.batch} frames, cutoff {args.cutoff} Å, seed {args.seed}.")
    lines += ["", "| pairs within the cutoff (first 5 frames) | count | min | 1 % | median | 99 % | max (Å) |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {' | '.join(str(v) for v in q.values())} |" for name, q in results["distances_by_separation"].items()]
    args.out.mkdir(parents=True, exist_ok=True)
    with output_lock(args.out / "results.json"):
        write_json_atomic(args.out / "results.json", results)
        write_atomic(args.out / "results.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
