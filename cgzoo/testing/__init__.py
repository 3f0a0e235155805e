"""Shared test suites for networks and priors, importable so users run them on their own registered classes.

Plain Python (no pytest needed)::

    from cgzoo.testing import check_network, check_prior
    check_network("schnet", {"cutoff": 6.0, "hidden_channels": 16, "num_filters": 16, "num_interactions": 2})
    check_prior({"class_path": "morse", "init_args": {"type_names": ["A", "B"], "cutoff": 6.0,
                                                      "default": {"D": 0.3, "alpha": 1.2, "r0": 4.0}, "params": {}}})

With pytest, subclass :class:`cgzoo.testing.suite.NetworkSuite` or :class:`~cgzoo.testing.suite.PriorSuite`.
The built-in families' cases are in :mod:`cgzoo.testing.cases`; the checks in
:mod:`cgzoo.testing.networks` and :mod:`cgzoo.testing.priors`; the test systems (bead types
``A`` and ``B``) in :mod:`cgzoo.testing.systems`.
"""

from cgzoo.testing.networks import MODEL_CHECKS, NETWORK_CHECKS, check_model, check_network
from cgzoo.testing.priors import PRIOR_CHECKS, check_continuous_at_cutoff, check_prior
from cgzoo.testing.systems import TYPES

__all__ = ["MODEL_CHECKS", "NETWORK_CHECKS", "PRIOR_CHECKS", "TYPES", "check_continuous_at_cutoff", "check_model",
           "check_network", "check_prior"]
