"""study_cost.py (experiments/benchmarks): its list scheduler on toy graphs with known makespans; its unit-cost sources."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks" / "study_cost.py"


@pytest.fixture(scope="module")
def cost():
    """The benchmark script imported as a module (it is not part of the cgzoo package)."""
    spec = importlib.util.spec_from_file_location("study_cost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module's annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _lowest_first(n: int) -> list[float]:
    return [float(i) for i in range(n)]


def test_chain_takes_the_sum_on_any_number_of_workers(cost):
    durations = [3.0, 1.0, 4.0, 1.5]
    deps = [[], [0], [1], [2]]
    for workers in (1, 2, 8):
        assert cost.list_schedule(durations, deps, workers, _lowest_first(4)) == pytest.approx(9.5)
    assert cost.critical_path(durations, deps) == (pytest.approx(9.5), [0, 1, 2, 3])


@pytest.mark.parametrize("n, workers", [(10, 3), (12, 4), (5, 8), (7, 1)])
def test_independent_equal_tasks_take_ceil_n_over_k_rounds(cost, n, workers):
    durations = [2.5] * n
    deps = [[] for _ in range(n)]
    assert cost.list_schedule(durations, deps, workers, _lowest_first(n)) == pytest.approx(math.ceil(n / workers) * 2.5)


def test_longest_path_first_beats_fifo_where_a_long_chain_is_listed_last(cost):
    # two 1 s tasks listed first, then a 1 s task that a 10 s task waits for; 2 workers
    durations = [1.0, 1.0, 1.0, 10.0]
    deps = [[], [], [], [2]]
    fifo = cost.list_schedule(durations, deps, 2, _lowest_first(4))
    longest = cost.list_schedule(durations, deps, 2, [-x for x in cost.bottom_levels(durations, deps)])
    assert (fifo, longest) == (pytest.approx(12.0), pytest.approx(11.0))


def test_makespan_respects_both_lower_bounds_on_random_graphs(cost):
    rng = random.Random(7)
    for _ in range(20):
        n = rng.randint(5, 40)
        durations = [rng.uniform(0.1, 5.0) for _ in range(n)]
        deps = [rng.sample(range(i), k=min(i, rng.randint(0, 3))) for i in range(n)]
        length, path = cost.critical_path(durations, deps)
        assert length == pytest.approx(sum(durations[i] for i in path))
        for workers in (1, 2, 5, 64):
            table = cost.scaling_table(durations, deps, [workers])
            makespan = table["rows"][0]["makespan_s"]
            assert makespan >= max(length, sum(durations) / workers) - 1e-9
            assert table["rows"][0]["fifo_makespan_s"] >= length - 1e-9
        # enough workers for every task: nothing waits but for its dependencies
        assert cost.list_schedule(durations, deps, n, _lowest_first(n)) == pytest.approx(length)


def test_widest_level_counts_tasks_at_equal_depth(cost):
    # a fork of three after one root, then a join: depths 0, 1, 1, 1, 2
    deps = [[], [0], [0], [0], [1, 2, 3]]
    assert cost.widest_level(deps) == (3, 1)


def test_a_cycle_is_an_error(cost):
    with pytest.raises(ValueError, match="cycle"):
        cost.list_schedule([1.0, 1.0], [[1], [0]], 2, [0.0, 1.0])


def test_unit_cost_falls_back_from_measured_to_benchmark_to_the_kind_mean(cost):
    measured = {"train/schnet/delta": {"key": ["train", "schnet", "delta"], "count": 1, "us_per_unit": 10.0},
                "train/pair_mlp/delta": {"key": ["train", "pair_mlp", "delta"], "count": 3, "us_per_unit": 2.0}}
    benchmark = {"train/equivariant/delta": {"us_per_unit": 200.0, "source": "scaled: from schnet"}}
    assert cost.unit_cost(("train", "schnet", "delta"), measured, benchmark) == (10.0, "measured")
    assert cost.unit_cost(("train", "equivariant", "delta"), measured, benchmark) == (200.0, "scaled")
    assert cost.unit_cost(("train", "schnet", "ml_only"), measured, benchmark) == (pytest.approx(4.0), "kind-mean")
    assert cost.unit_cost(("score", "schnet"), measured, benchmark) == (0.0, "unmeasured")


def test_training_throughput_table_is_read_from_results_md(cost):
    rates = cost.training_frames_per_s(SCRIPT.parent / "RESULTS.md")
    assert {"pair_mlp", "schnet", "equivariant"} <= set(rates)
    assert all(rate > 0 for rate in rates.values())
