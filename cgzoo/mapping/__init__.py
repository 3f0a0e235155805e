"""Atomistic→CG mapping: the mapping file formats (YAML, VOTCA XML) and applying a mapping to frames."""

from cgzoo.mapping.apply import CGMapper
from cgzoo.mapping.spec import MappingSpec, load_mapping

__all__ = ["CGMapper", "MappingSpec", "load_mapping"]
