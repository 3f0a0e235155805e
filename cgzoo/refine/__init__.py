"""Refining fitted priors against the model's own MD: the layer above fitting and md, imported only by the command line and the study."""
