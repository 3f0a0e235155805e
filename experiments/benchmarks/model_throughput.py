"""Force-evaluation throughput and peak memory of every architecture, next to schnetpack's SchNet, on one machine.

Structures: 1-bead water-like liquids (0.0334 beads/Å³, a jittered cubic lattice) of 500, 2 000
and 8 000 beads in periodic cubic boxes; cutoff 9 Å; networks at their zoo defaults
(``models/<arch>.yaml``). One measurement = energy + forces (forward + backward), float32,
timed over repeats after a warm-up, the neighbour list built once beforehand (its cost is
reported separately). schnetpack's SchNet gets the same pairs, the same widths (64 features,
64 filters, 3 interactions, 32 Gaussians, cosine cutoff 9 Å) and the same timing loop. Each
(model, size) runs in a fresh process, with glibc's allocator tuned as the ``cgzoo`` command
tunes it (``cgzoo.runtime``) and its address space capped at 18 GiB (a case that needs more is
reported as failed), so its peak RSS is its own; ``peak ΔRSS`` is the peak
minus the RSS after building the inputs. A second table gives training throughput (frames/s:
force loss, backward, Adam) on the embedded default dataset for every model and schnetpack's
SchNet in the same run. Results are appended to ``RESULTS.md``.

schnetpack 2.x imports ``T_co`` from ``torch.utils.data.dataloader``, which torch 2.13 no longer
has; the measuring process defines it before importing schnetpack (``--no-deps`` install of
schnetpack 2.1.1: its ``sympy<=1.12`` pin conflicts with torch 2.13). Usage::

    python experiments/benchmarks/model_throughput.py [--sizes 500 2000 8000] [--threads 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# schnetpack's SchNet at cgzoo's SchNet widths, fed cgzoo's periodic pairs; pasted into both measuring scripts
SCHNETPACK = r"""
def schnetpack_forces():
    import torch.utils.data.dataloader as dl
    dl.T_co = typing.TypeVar("T_co", covariant=True)
    import schnetpack as spk
    import schnetpack.properties as P
    rep = spk.representation.SchNet(n_atom_basis=64, n_interactions=3, radial_basis=spk.nn.GaussianRBF(32, cutoff=9.0),
                                    cutoff_fn=spk.nn.CosineCutoff(9.0), n_filters=64)
    model = spk.model.NeuralNetworkPotential(rep, input_modules=[spk.atomistic.PairwiseDistances()],
                                             output_modules=[spk.atomistic.Atomwise(n_in=64, output_key="energy"),
                                                             spk.atomistic.Forces(energy_key="energy", force_key="forces")])
    def forces_of(graph):
        i, j = graph.edge_index
        offsets = torch.bmm(graph.edge_shift.unsqueeze(1), graph.cell[graph.batch[i]]).squeeze(1)
        n = graph.pos.shape[0]
        inputs = {P.Z: torch.ones(n, dtype=torch.long), P.n_atoms: torch.bincount(graph.batch), P.idx_m: graph.batch,
                  P.cell: graph.cell, P.pbc: torch.ones(graph.cell.shape[0], 3, dtype=torch.bool),
                  P.idx_i: torch.cat([i, j]), P.idx_j: torch.cat([j, i]), P.offsets: torch.cat([offsets, -offsets]),
                  P.R: graph.pos.detach().clone()}
        return model(inputs)["forces"]
    return model, forces_of
"""


MEASURE = r"""
import json, resource, sys, time, typing
import numpy as np, torch
from cgzoo.runtime import tune_allocator
tune_allocator()
torch.set_num_threads(int(sys.argv[3]))
name, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[4])
rng = np.random.default_rng(0)
side = round(n ** (1 / 3)) if round(n ** (1 / 3)) ** 3 == n else int(np.ceil(n ** (1 / 3)))
box = (n / 0.0334) ** (1 / 3)
grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
pos = (grid + 0.5) * (box / side) + rng.normal(0, 0.3, (n, 3))
cell = np.eye(3) * box
from cgzoo.neighbors import TopologyCache, batch_graph
cache = TopologyCache(n, np.zeros((0, 2), int), np.arange(n))
t0 = time.perf_counter()
graph = batch_graph(pos[None], cell[None], np.zeros(n, int), cache, 9.0, dtype=torch.float32)
nl_seconds = time.perf_counter() - t0
if name == "schnetpack":
    model, forces_of = schnetpack_forces()
    def run():
        return forces_of(graph)
else:
    import yaml
    from cgzoo.models import CGModel, build_network
    cfg = yaml.safe_load(open(f"models/{name}.yaml"))["model"]
    model = CGModel(None, build_network(name, ["W"], **cfg["network_args"]), mode="ml_only")
    def run():
        return model(graph, forces=True)["forces"]
n_params = sum(p.numel() for p in model.parameters())
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run()
t0 = time.perf_counter()
for _ in range(repeats):
    forces = run()
seconds = (time.perf_counter() - t0) / repeats
assert torch.isfinite(forces).all()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"model": name, "beads": n, "pairs": int(graph.edge_index.shape[1]), "seconds": seconds,
                  "bead_evals_per_s": n / seconds, "neighbor_list_s": nl_seconds, "params": n_params,
                  "peak_delta_rss_mb": (peak - base_rss) / 1024}))
"""


TRAIN = r"""
import json, sys, time, typing
import numpy as np, torch
from cgzoo.runtime import tune_allocator
tune_allocator()
torch.set_num_threads(int(sys.argv[2]))
name, steps, batch = sys.argv[1], int(sys.argv[3]), 4
from cgzoo.data.dataset import CGDataset
from cgzoo.neighbors import TopologyCache, batch_graph
ds = CGDataset.load("datasets/default/spce-water_1bead_com.h5")
top = ds.topology
cache = TopologyCache(top.n_beads, top.bonds, top.molecule_ids)
batches = [np.arange(k * batch, (k + 1) * batch) for k in range(steps + 1)]
def graph_of(frames):
    return batch_graph(ds.positions[frames], ds.boxes[frames], top.bead_types, cache, 9.0, dtype=torch.float32)
if name == "schnetpack":
    model, forces_of = schnetpack_forces()
else:
    import yaml
    from cgzoo.models import CGModel, build_network
    cfg = yaml.safe_load(open(f"models/{name}.yaml"))["model"]
    model = CGModel(None, build_network(name, top.type_names, **cfg["network_args"]), mode="ml_only")
    model.train()
    def forces_of(graph):
        return model(graph, forces=True)["forces"]
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
def step(frames):
    graph = graph_of(frames)
    loss = ((forces_of(graph) - torch.as_tensor(ds.forces[frames].reshape(-1, 3))) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
step(batches[0])
t0 = time.perf_counter()
for frames in batches[1:]:
    step(frames)
seconds = time.perf_counter() - t0
print(json.dumps({"model": name, "frames_per_s": steps * batch / seconds, "step_s": seconds / steps, "batch": batch}))
"""


def limit_memory() -> None:
    """Cap a measurement's address space (18 GiB) so an oversized case fails alone instead of exhausting the machine."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (18 * 2**30, 18 * 2**30))


def train_throughput(models: list[str], threads: int, steps: int) -> list[dict]:
    """Training steps (force loss, backward, Adam) on batches of 4 default-dataset frames, per model."""
    rows = []
    for name in models:
        proc = subprocess.run([sys.executable, "-c", SCHNETPACK + TRAIN, name, str(threads), str(steps)], capture_output=True, text=True,
                              cwd=HERE.parents[1])
        if proc.returncode:
            print(f"{name} training: failed\n{proc.stderr[-1500:]}", flush=True)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 8000])
    from cgzoo.models import NETWORKS

    parser.add_argument("--models", nargs="+", default=[*NETWORKS, "schnetpack"], help="registered networks and "
                        "schnetpack (default: every registered network, then schnetpack's SchNet)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=5)
    args = parser.parse_args()
    rows, failed = [], []
    for name in args.models:
        for n in args.sizes:
            proc = subprocess.run([sys.executable, "-c", SCHNETPACK + MEASURE, name, str(n), str(args.threads), str(args.repeats)],
                                  capture_output=True, text=True, cwd=HERE.parents[1], preexec_fn=limit_memory)
            if proc.returncode:
                print(f"{name} {n}: failed\n{proc.stderr[-1500:]}", flush=True)
                memory = "MemoryError" in proc.stderr or "memory" in proc.stderr.lower()
                failed.append((name, n, "out of memory under the 18 GiB cap" if memory else "failed (see stderr)"))
                continue
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    stamp = dt.date.today().isoformat()
    machine = f"{platform.machine()} CPU, {args.threads} thread(s), {platform.system()}, Python {platform.python_version()}"
    (HERE / "model_throughput.json").write_text(json.dumps({"date": stamp, "machine": machine, "rows": rows}, indent=1))
    spk = {r["beads"]: r for r in rows if r["model"] == "schnetpack"}
    lines = [f"\n## Force-evaluation throughput ({stamp})\n",
             f"Machine: {machine}; command: `python experiments/benchmarks/model_throughput.py --sizes "
             f"{' '.join(map(str, args.sizes))} --threads {args.threads}`. Energy + forces, float32, cutoff 9 Å, "
             "neighbour list prebuilt (its time in its own column).\n",
             "| model | beads | pairs | s / eval | bead·evals/s | vs schnetpack SchNet | neighbour list (s) | peak ΔRSS (MB) | params |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{spk[r['beads']]['seconds'] / r['seconds']:.2f}× speed" if r["beads"] in spk and r["model"] != "schnetpack" else "—"
        lines.append(f"| {r['model']} | {r['beads']} | {r['pairs']} | {r['seconds']:.3f} | {r['bead_evals_per_s']:.0f} | {ratio} | "
                     f"{r['neighbor_list_s']:.3f} | {r['peak_delta_rss_mb']:.0f} | {r['params']} |")
    lines += [f"| {name} | {n} | — | — | — | — | — | {why} | — |" for name, n, why in failed]
    training = train_throughput(args.models, args.threads, args.train_steps)
    spk_train = next((r for r in training if r["model"] == "schnetpack"), None)
    lines += ["", "Training throughput on the default dataset (CG SPC/E water, 300 beads per frame): force-matching loss, "
              f"backward (double backward through the forces) and Adam, batches of 4 frames, {args.train_steps} timed steps.", "",
              "| model | frames / s | s / step | vs schnetpack SchNet |", "|---|---|---|---|"]
    for r in training:
        ratio = f"{r['frames_per_s'] / spk_train['frames_per_s']:.2f}× speed" if spk_train and r["model"] != "schnetpack" else "—"
        lines.append(f"| {r['model']} | {r['frames_per_s']:.2f} | {r['step_s']:.3f} | {ratio} |")
    with (HERE / "RESULTS.md").open("a") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
