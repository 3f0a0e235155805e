"""``cgzoo noise-floor``: restrained runs at M configurations of a generate run → noise floor per bead type, models scored.

:func:`run_noise_floor` measures (resuming a directory that holds finished configurations) and
then scores the models given; :func:`score_models` scores models against an existing output
without running MD. Both hold the output's lock while they write.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openmm

from cgzoo.geometry import wrap
from cgzoo.mapping import CGMapper
from cgzoo.meanforce import report, store
from cgzoo.meanforce.predict import model_forces
from cgzoo.meanforce.restrained import RestraintSettings, run_restrained
from cgzoo.meanforce.source import (
    ALL,
    SourceFrames,
    load_mapper,
    read_source_frames,
    rebuild_system,
    source_record,
)
from cgzoo.meanforce.statistics import config_stats, model_score, type_floor
from cgzoo.outputs import output_lock

#: Langevin friction of the restrained runs (1/ps): that of the ``cgzoo generate`` runs.
FRICTION_PER_PS = 1.0


def run_noise_floor(source: str | Path, mapping: str | Path, out: str | Path, configs: int = 8, run_ps: float = 2.0,
                    equil_ps: float = 0.2, stiffness: float = 3000.0, sample_every_fs: float = 20.0,
                    timestep_fs: float | None = None, seed: int = 0, platform: str = "CPU", threads: int | None = None,
                    models: list[str | Path] = (), overwrite: bool = False, progress: bool = True,
                    force_map: str | None = None) -> dict:
    """Measure the noise floor of ``mapping`` on the generate run ``source`` into ``out``; return ``noise_floor.json``.

    ``configs`` frames evenly spaced over the run are each simulated with every bead restrained
    (``stiffness`` kcal/(mol·Å²)) for ``equil_ps`` + ``run_ps`` ps at the run's temperature and time
    step (or ``timestep_fs``: a stiff restraint may need a shorter one), sampling the mapped force
    every ``sample_every_fs`` fs. ``force_map`` (``basic`` | ``optimized``) overrides the mapping's: the floor is the
    noise of that map's forces around the mean force, which every consistent map shares.
    """
    out = Path(out)
    record = source_record(source)
    mapper = load_mapper(source, mapping, force_map)
    settings = RestraintSettings(stiffness=float(stiffness), temperature=float(record["temperature_K"]),
                                 timestep_fs=float(record["timestep_fs"] if timestep_fs is None else timestep_fs),
                                 friction_per_ps=FRICTION_PER_PS,
                                 equil_ps=float(equil_ps), run_ps=float(run_ps), sample_every_fs=float(sample_every_fs),
                                 platform=platform, threads=threads)
    settings.validate()
    identity = {"source": str(Path(source).resolve()), "system": record["system"],
                "mapping": str(Path(mapping).resolve())}
    frames = read_source_frames(source, mapper, int(configs))
    return measure(out, identity, frames, lambda box: rebuild_system(record, box), mapper, settings, int(seed), models,
                   overwrite, progress)


def measure(out: str | Path, identity: dict, frames: SourceFrames, system_for: Callable[[np.ndarray], openmm.System],
            mapper: CGMapper, settings: RestraintSettings, seed: int = 0, models: list[str | Path] = (),
            overwrite: bool = False, progress: bool = True) -> dict:
    """Restrained runs at every configuration of ``frames`` (resuming finished ones), then the floor and model scores.

    ``system_for(box)`` returns the atomistic OpenMM system in a (3, 3) Å cell; ``identity`` names
    the source, ``system`` and ``mapping``. It, the mapping's hashes and the settings are what a
    resumed run must match (``settings.json``). Any system and mapper work: the
    generate-run wrapper :func:`run_noise_floor` and the tests' toy systems both come through here.
    """
    out = Path(out)
    key = {**identity, "mapping_sha256": mapper.spec.sha256, "force_map_sha256": _matrix_hash(mapper.force_map),
           "position_map_sha256": _matrix_hash(mapper.position_map), "configs": len(frames.frame_indices),
           "frames": frames.frame_indices.tolist(), **settings.resume_key(), "n_samples": settings.n_samples,
           "seed": seed}
    with output_lock(out):
        store.prepare(out, key, overwrite)
        scored = report.read_results(out)["models"] if (out / report.RESULTS).exists() else {}
        results = []
        for index, frame in enumerate(frames.frame_indices.tolist()):
            if store.config_path(out, index).exists():
                results.append(store.load_config(out, index))
                continue
            start = time.perf_counter()
            samples = run_restrained(system_for(frames.boxes[index]), frames.positions[index], frames.boxes[index],
                                     mapper.position_map, mapper.force_map, settings,
                                     seed=1 + (seed * 100_003 + index) % (2**31 - 2))
            result = store.ConfigResult(frame, config_stats(samples.forces), samples.rms_deviation,
                                        samples.max_deviation, time.perf_counter() - start)
            store.save_config(out, index, result)
            results.append(result)
            if progress:
                print(f"configuration {index + 1}/{len(frames.frame_indices)} (frame {frame}): "
                      f"{result.seconds:.1f} s, restraint RMS deviation {result.rms_deviation:.4f} Å", flush=True)
        stacked = {name: np.stack([getattr(r.stats, name) for r in results]) for name in ("mean", "variance", "sem2")}
        targets = np.stack([np.asarray(mapper.position_map @ p) for p in frames.positions])
        store.save_mean_forces(
            out, frames=frames.frame_indices, positions=wrap(targets, frames.boxes), boxes=frames.boxes,
            raw_forces=frames.raw_forces, bead_types=mapper.bead_types, type_names=np.array(mapper.type_names),
            molecule_ids=mapper.molecule_ids, bonds=mapper.bonds, angles=mapper.angles, dihedrals=mapper.dihedrals,
            total_variance=np.array([frames.total_variance[n] for n in [*mapper.type_names, ALL]]), **stacked)
        summary = {"settings": key, "n_frames_source": frames.n_frames, "n_atoms": int(mapper.topology.n_atoms),
                   "n_beads": int(mapper.n_beads),
                   "restraint_rms_deviation_A": float(np.sqrt(np.mean([r.rms_deviation**2 for r in results]))),
                   "restraint_max_deviation_A": float(max(r.max_deviation for r in results)),
                   "seconds_per_config": float(np.mean([r.seconds for r in results])),
                   "floor": _floors(stacked, mapper.bead_types, mapper.type_names, frames.total_variance),
                   "models": scored}
        report.write_results(out, summary, stacked["mean"], frames.raw_forces)
        if models:
            summary = score_models(out, models)
    return summary


def score_models(out: str | Path, models: list[str | Path]) -> dict:
    """Score each model (prior directory, ``prior.json`` or checkpoint) against the stored mean forces; return the summary."""
    out = Path(out)
    with output_lock(out):
        summary = report.read_results(out)
        data = store.load_mean_forces(out)
        type_names = [str(n) for n in data["type_names"]]
        totals = dict(zip([*type_names, ALL], data["total_variance"].tolist(), strict=True))
        for path in models:
            predicted = model_forces(path, data["positions"], data["boxes"], type_names, data["bead_types"],
                                     data["molecule_ids"], data["bonds"], data["angles"], data["dihedrals"])
            scores = {}
            for name, beads in _bead_sets(data["bead_types"], type_names).items():
                score = model_score(predicted, data["mean"], data["sem2"], data["variance"], data["raw_forces"], beads,
                                    totals[name])
                scores[name] = vars(score)
            summary["models"][str(path)] = scores
        report.write_results(out, summary, data["mean"], data["raw_forces"])
    return summary


def _bead_sets(bead_types: np.ndarray, type_names: list[str]) -> dict[str, np.ndarray]:
    """Bead indices per type name, and every bead under ``all``."""
    sets = {name: np.flatnonzero(bead_types == t) for t, name in enumerate(type_names)}
    sets[ALL] = np.arange(len(bead_types))
    return sets


def _floors(stacked: dict[str, np.ndarray], bead_types: np.ndarray, type_names: list[str],
            totals: dict[str, float]) -> dict[str, dict]:
    """The noise floor of each bead type and of all beads."""
    return {name: vars(type_floor(stacked["variance"], stacked["sem2"], beads, totals[name]))
            for name, beads in _bead_sets(bead_types, type_names).items()}


def _matrix_hash(matrix) -> str:
    """SHA-256 of a sparse matrix's entries: a changed force map must not resume an old run."""
    csr = matrix.tocsr()
    digest = hashlib.sha256()
    for array in (csr.indptr, csr.indices, np.asarray(csr.data, dtype=np.float64)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()

