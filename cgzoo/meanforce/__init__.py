"""Mean forces and the noise floor of a CG mapping, measured by atomistic MD with every bead restrained.

The layer sits above generate, mapping and models: it rebuilds a ``cgzoo generate`` system,
restrains bead centres at mapped configurations, averages the mapped force, and scores any
prior or checkpoint against the result. Nothing below imports it; see docs/noise_floor.md.
"""

from cgzoo.meanforce.run import run_noise_floor, score_models

__all__ = ["run_noise_floor", "score_models"]
