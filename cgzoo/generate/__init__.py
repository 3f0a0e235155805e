"""Atomistic reference data with OpenMM: built-in liquids (SPC/E water, TraPPE-UA methanol, n-hexane,
cyclohexane) simulated NPT then NVT, written as a resumable dataset directory (see :mod:`cgzoo.generate.runner`)."""

from cgzoo.generate.registry import SYSTEMS, get_system
from cgzoo.generate.runner import GenerateOptions, run_generate

__all__ = ["SYSTEMS", "GenerateOptions", "get_system", "run_generate"]
