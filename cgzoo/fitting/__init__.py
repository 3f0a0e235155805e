"""Fitting priors to CG data: force matching, Boltzmann inversion, least squares, and the ``fit-prior`` spec runner.

Fitting produces priors (:mod:`cgzoo.priors`) and never the reverse. Modules: :mod:`.force_matching`
(joint MS-CG on B-spline bases), :mod:`.boltzmann` (bonded tables or harmonic terms from sampled
distributions), :mod:`.least_squares` (an analytic prior's parameters), :mod:`.spec` (a YAML spec
run on the training split, reports, ``cgzoo fit-prior``) and :mod:`.plots` (the fit's figures).
"""
