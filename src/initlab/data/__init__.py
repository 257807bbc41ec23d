"""Datasets held in memory as tensors: MNIST (bundled), Fashion-MNIST, digits, blobs."""

from initlab.data.datasets import canonical_name, load, names
from initlab.data.idx import read_idx
from initlab.data.tensors import Dataset, Split

__all__ = ["Dataset", "Split", "canonical_name", "load", "names", "read_idx"]
