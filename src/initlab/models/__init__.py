"""Models from short specs, and the same models stacked K at a time."""

from initlab.models.specs import build, canonical_arch, parse_arch
from initlab.models.stacked import StackedModel

__all__ = ["StackedModel", "build", "canonical_arch", "parse_arch"]
