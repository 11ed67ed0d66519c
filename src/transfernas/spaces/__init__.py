"""Search spaces: decisions, masks, encode/decode."""

from transfernas.spaces.base import (
    Actions,
    ActionSpace,
    SearchSpace,
    is_valid,
    mutate_actions,
    sample_actions,
)
from transfernas.spaces.nb201 import NB201Space
from transfernas.spaces.resblock import ResBlockSpace

SPACES: dict[str, type[SearchSpace]] = {"nb201": NB201Space, "resblock": ResBlockSpace}

__all__ = [
    "SPACES",
    "ActionSpace",
    "Actions",
    "NB201Space",
    "ResBlockSpace",
    "SearchSpace",
    "is_valid",
    "mutate_actions",
    "sample_actions",
]
