"""Physics priors behind one protocol: analytic, tabulated, summed or user-defined; families load on first use by name."""

from cgzoo.priors.base import NoPrior, Prior, SumPrior
from cgzoo.priors.registry import PRIORS, build_prior, load_prior, prior_class, prior_spec, save_prior

__all__ = ["PRIORS", "NoPrior", "Prior", "SumPrior", "build_prior", "load_prior", "prior_class", "prior_spec", "save_prior"]
