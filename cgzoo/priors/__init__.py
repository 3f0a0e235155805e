"""Physics priors behind one protocol: analytic, tabulated, fitted, summed or user-defined."""

from cgzoo.priors.base import NoPrior, Prior, SumPrior
from cgzoo.priors.registry import PRIORS, build_prior, load_prior, prior_spec, save_prior

__all__ = ["PRIORS", "NoPrior", "Prior", "SumPrior", "build_prior", "prior_spec", "load_prior", "save_prior"]
