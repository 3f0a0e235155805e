"""Training with PyTorch Lightning: data module, force-matching module, CLI and safe checkpoint I/O."""
