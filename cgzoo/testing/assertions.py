"""Assertion helpers of the shared suites that work without pytest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def assert_approx(actual: float, expected: float, rel: float, abs_: float, what: str) -> None:
    """``actual`` within ``rel`` (relative) or ``abs_`` of ``expected``, the comparison ``pytest.approx`` makes."""
    assert abs(actual - expected) <= max(rel * abs(expected), abs_), f"{what}: {actual} != {expected} (rel {rel}, abs {abs_})"


def run_named(name: str, check: Callable[..., None], *args: Any) -> None:
    """Run ``check(*args)`` so that a failure's message starts with the check's ``name``."""
    try:
        check(*args)
    except AssertionError as exc:
        raise AssertionError(f"{name}: {exc}") from exc
