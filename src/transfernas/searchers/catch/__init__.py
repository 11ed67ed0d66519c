"""CATCH (Chen et al., ECCV 2020): context-based meta-RL architecture search."""

from transfernas.searchers.catch.agent import (
    Catch,
    CatchConfig,
    CatchMeta,
    CatchRandom,
    CatchSFS,
    CatchZero,
)

__all__ = ["Catch", "CatchConfig", "CatchMeta", "CatchRandom", "CatchSFS", "CatchZero"]
