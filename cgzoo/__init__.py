"""cgzoo: Δ-learning coarse-grained molecular dynamics (physics prior + neural network residual)."""

__version__ = "0.1.0"
