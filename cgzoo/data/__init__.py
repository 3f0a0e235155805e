"""CG datasets: on-disk format, streaming writer, block splits, PyG frames, extxyz export, summaries and start structures."""

from cgzoo.data.dataset import CGDataset, CGTopology, DatasetWriter
from cgzoo.data.splits import block_split

__all__ = ["CGDataset", "CGTopology", "DatasetWriter", "block_split"]
