"""Refinement of a fitted CG model by running it: each module adjusts one property (the pressure ramp of a prior,
the friction of the thermostat) until the model's own MD matches the reference; only the command line calls it."""
