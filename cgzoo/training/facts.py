"""What a CG model takes from its training data, handed from the data module to the Lightning module by the CLI.

The data module computes these facts (it owns the data); the Lightning module builds its model
from them (it owns the model); neither reads the other. ``cgzoo fit`` links them with
``parser.link_arguments("data", "model.data_facts", apply_on="instantiate")``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cgzoo.priors import Prior


@dataclass(frozen=True)
class DataFacts:
    """Bead type names, the prior fitted on the training split and the training force scales, in kcal/mol/Å."""

    type_names: list[str]
    prior: Prior
    #: RMS of the reference force components over training frames: the network's force scale when it learns them all
    force_rms: float
    #: RMS of the reference − prior force components over training frames: the network's force scale in delta mode
    residual_rms: float
    #: the data file(s) the facts come from, for error messages
    source: str
    #: the data's temperature (K), when every dataset states the same one: the kinetic pressure of a pressure target
    temperature: float | None = None
