"""Shared observable suite: every registered observable is measured on a synthetic trajectory and compared with itself.

Each check runs for every name in :data:`cgzoo.observables.registry.OBSERVABLES`; a name without a
case in ``tests/observable_cases.py`` fails :func:`test_every_registered_observable_has_a_case`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from observable_cases import OBSERVABLE_CASES

from cgzoo.observables import structure
from cgzoo.observables.base import Observable, Settings
from cgzoo.observables.plots import REFERENCE
from cgzoo.observables.registry import OBSERVABLES, observable_class, registered_observables
from cgzoo.observables.report import RUN_COLUMNS, json_safe, measure_reference, observe
from cgzoo.observables.trajectory import CGTrajectory
from cgzoo.study.results import result_columns

NAMES = sorted(OBSERVABLES)


def test_every_registered_observable_has_a_case():
    missing = set(OBSERVABLES) - set(OBSERVABLE_CASES)
    assert not missing, f"add a case to tests/observable_cases.py for {sorted(missing)}"


def test_names_and_columns_are_unique():
    observables = registered_observables()
    assert [obs.name for obs in observables] == list(OBSERVABLES)
    keys = [*RUN_COLUMNS, *(column.key for obs in observables for column in obs.columns)]
    assert len(keys) == len(set(keys)), f"metrics.csv columns claimed twice: {sorted({k for k in keys if keys.count(k) > 1})}"
    columns = result_columns()
    assert len(columns) == len(set(columns)), "results.csv columns claimed twice"


@cache
def evaluation(case: Callable[[], CGTrajectory]) -> tuple[Settings, dict[str, Any], dict[str, Any]]:
    """Every registered observable on one case trajectory, measured as the reference and again as a run."""
    traj = case()
    observables = registered_observables()
    settings = Settings(r_max=structure.max_rdf_range(traj), bins=60)
    return settings, measure_reference(observables, traj, settings), observe(observables, traj, settings)


def measured(name: str) -> tuple[Observable, Any, Any, dict[str, Any]]:
    """The observable, its results on its case as the reference and as a run, and the metrics ``cgzoo evaluate`` makes of them."""
    settings, references, runs = evaluation(OBSERVABLE_CASES[name])
    obs, reference, run = observable_class(name)(), references[name], runs[name]
    n_frames = OBSERVABLE_CASES[name]().n_frames
    metrics = {"reference": {"n_frames": n_frames, **obs.values(reference)},
               "settings": {"r_max_A": settings.r_max, "rdf_bins": settings.bins, **obs.definition(reference), "equil_fs": 0.0},
               "runs": {"run": {"n_frames": n_frames, **obs.values(run), **obs.compare(reference, run)}}}
    return obs, reference, run, metrics


def numbers(value: Any) -> list[float]:
    """Every number in a nest of dicts and lists."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in numbers(v)]
    return [float(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@pytest.mark.parametrize("name", NAMES)
def test_columns_are_values_or_errors(name):
    obs, reference, run, _ = measured(name)
    given = {**obs.values(run), **obs.compare(reference, run)}
    assert {column.key for column in obs.columns} <= set(given), f"{name}: columns without a value"
    assert obs.section or type(obs).plot is Observable.plot, f"{name}: an observable that plots names its report section"


@pytest.mark.parametrize("name", NAMES)
def test_compared_with_itself_the_error_is_zero(name):
    obs, reference, run, _ = measured(name)
    errors = obs.compare(reference, run)
    assert all(errors[c.key] is not None for c in obs.columns if c.key in errors), f"{name}: an error is undefined: {errors}"
    assert all(x == pytest.approx(0.0, abs=1e-12) for x in numbers(errors)), f"{name}: {errors}"
    assert numbers(obs.values(run)) == pytest.approx(numbers(obs.values(reference)))


@pytest.mark.parametrize("name", NAMES)
def test_metrics_are_json_serialisable(name):
    obs, _, _, metrics = measured(name)
    text = json.dumps(json_safe(metrics), allow_nan=False)
    assert json.loads(text)["runs"]["run"].keys() == metrics["runs"]["run"].keys()
    assert isinstance(obs.describe(metrics["settings"]), str)


@pytest.mark.parametrize("name", NAMES)
def test_plots_are_written(name, tmp_path):
    obs, reference, run, metrics = measured(name)
    files = obs.plot({REFERENCE: reference, "run": run}, metrics, {"run": OBSERVABLE_CASES[name]()}, tmp_path)
    assert all(f.parent == tmp_path and f.stat().st_size > 0 for f in files)


@pytest.mark.parametrize("name", NAMES)
def test_study_cells_fill_the_declared_columns(name):
    obs, _, _, metrics = measured(name)
    evaluation = (metrics["reference"], metrics["runs"]["run"])
    cells = obs.study_cells({"nvt": evaluation, "npt": evaluation})
    assert set(cells) == set(obs.study_columns), f"{name}: study cells {sorted(cells)} vs columns {obs.study_columns}"
    assert all(v is None for v in obs.study_cells({}).values()), f"{name}: study cells without an evaluation"
    for metric in obs.study_metrics:
        assert metric.column in obs.study_columns and metric.ensemble in ("nvt", "npt")
        assert math.isclose(cells[metric.column], 0.0, abs_tol=1e-12), f"{name}: {metric.column} of a self-comparison"
