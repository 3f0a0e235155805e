"""MD engines for cgzoo models: tables of the pair-additive part (OpenMM, LAMMPS), the network as a torch force, MTS."""

from cgzoo.engines.base import ENGINES, EngineFailure, EngineMissing, engine_module
from cgzoo.engines.tables import EngineModel, NotRepresentable, split_model

__all__ = ["ENGINES", "EngineFailure", "EngineMissing", "EngineModel", "NotRepresentable", "engine_module", "split_model"]
