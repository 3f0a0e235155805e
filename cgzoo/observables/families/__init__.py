"""The built-in observables, one file each, listed in :mod:`cgzoo.observables.registry`."""
