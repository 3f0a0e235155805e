"""Refinement of a fitted CG model by running it: each module adjusts one property until the model's MD matches the reference."""
