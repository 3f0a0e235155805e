"""The shared suites as pytest test classes (this module imports pytest; the checks themselves do not).

Subclass one in a test module and set ``cases``; every check then runs on every case::

    from cgzoo.testing.suite import NetworkSuite

    class TestMyNet(NetworkSuite):
        cases = {"mypkg.nets.MyNet": {"cutoff": 6.0, "width": 8}}   # an enabled plugin's class

Cases are built once per class, so the suite costs one model per (network, mode).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, ClassVar

import pytest
import torch

from cgzoo.models import CGModel, Network
from cgzoo.priors import Prior, build_prior
from cgzoo.testing.networks import (
    MODEL_CHECKS,
    NETWORK_CHECKS,
    NETWORK_MODES,
    build,
    make_model,
    model_system,
)
from cgzoo.testing.priors import PRIOR_CHECKS, check_continuous_at_cutoff, prior_system


class SingleThreaded:
    """Base of the suites: runs their tests on one torch thread (tiny graphs; on a shared CPU busy-waiting threads cost more)."""

    @pytest.fixture(scope="class", autouse=True)
    def one_thread(self) -> Iterator[None]:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)


class NetworkSuite(SingleThreaded):
    """Every network check on every case, and every model check on every case in every network mode (plus prior only once)."""

    #: network name (registered, or an enabled plugin's dotted path) → small hyper-parameters, ``type_names`` excluded
    cases: ClassVar[dict[str, dict[str, Any]]] = {}
    #: names that must have a case, e.g. a registry: the suite fails naming those without one
    required: ClassVar[Collection[str]] = ()
    #: where a missing case is added, for the failure message
    cases_home: ClassVar[str] = "the suite's cases"

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrise over the class's cases (class scope, so each model is built once) and over the checks."""
        names = sorted(self.cases)
        if "network_name" in metafunc.fixturenames:
            metafunc.parametrize("network_name", names, scope="class")
        if "model_case" in metafunc.fixturenames:
            model_cases = [(n, m) for n in names for m in NETWORK_MODES] + [(names[0], "prior_only")] * bool(names)
            ids = [m if m == "prior_only" else f"{n}-{m}" for n, m in model_cases]
            metafunc.parametrize("model_case", model_cases, ids=ids, scope="class")
        if "network_check" in metafunc.fixturenames:
            metafunc.parametrize("network_check", list(NETWORK_CHECKS))
        if "model_check" in metafunc.fixturenames:
            metafunc.parametrize("model_check", list(MODEL_CHECKS))

    @pytest.fixture(scope="class")
    def network(self, network_name: str) -> Network:
        return build(network_name, self.cases[network_name])

    @pytest.fixture(scope="class")
    def model(self, model_case: tuple[str, str]) -> CGModel:
        name, mode = model_case
        return make_model(name, self.cases[name], mode)

    @pytest.fixture(scope="class")
    def system(self) -> dict:
        return model_system()

    def test_every_required_network_has_a_case(self) -> None:
        missing = sorted(set(self.required) - set(self.cases))
        assert not missing, f"no test case for networks {missing}: add small hyper-parameters for them to {self.cases_home}"

    def test_network(self, network: Network, network_check: str) -> None:
        NETWORK_CHECKS[network_check](network)

    def test_model(self, model: CGModel, system: dict, model_check: str) -> None:
        MODEL_CHECKS[model_check](model, system)


class PriorSuite(SingleThreaded):
    """Every prior check on every case, and the cutoff-continuity check on the smooth cases."""

    #: case name → prior spec for bead types A and B (``class_path`` + ``init_args``)
    cases: ClassVar[dict[str, dict[str, Any]]] = {}
    #: case name → spec of a prior whose energy and force go continuously to zero at its cutoff
    smooth_cases: ClassVar[dict[str, dict[str, Any]]] = {}
    #: class paths that must appear in a case, e.g. a registry: the suite fails naming those without one
    required: ClassVar[Collection[str]] = ()
    #: where a missing case is added, for the failure message
    cases_home: ClassVar[str] = "the suite's cases"

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrise over the class's cases (class scope, so each prior is built once) and over the checks."""
        if "prior_case" in metafunc.fixturenames:
            metafunc.parametrize("prior_case", sorted(self.cases), scope="class")
        if "prior_check" in metafunc.fixturenames:
            metafunc.parametrize("prior_check", list(PRIOR_CHECKS))
        if "smooth_case" in metafunc.fixturenames:
            metafunc.parametrize("smooth_case", sorted(self.smooth_cases))

    @pytest.fixture(scope="class")
    def prior(self, prior_case: str) -> Prior:
        return build_prior(self.cases[prior_case]).double()

    @pytest.fixture(scope="class")
    def system(self) -> dict:
        return prior_system()

    def test_every_required_prior_has_a_case(self) -> None:
        covered = {case["class_path"] for case in self.cases.values()}
        missing = sorted(set(self.required) - covered)
        assert not missing, f"no test case for priors {missing}: add a spec for each to {self.cases_home}"

    def test_prior(self, prior: Prior, system: dict, prior_check: str) -> None:
        PRIOR_CHECKS[prior_check](prior, system)

    def test_continuous_at_cutoff(self, smooth_case: str) -> None:
        check_continuous_at_cutoff(build_prior(self.smooth_cases[smooth_case]).double())
