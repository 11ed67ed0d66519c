from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, settings

from transfernas.spaces.base import SearchSpace
from transfernas.tasks.tabular import NB201Table

ROOT = Path(__file__).resolve().parents[1]
NB201_DIR = ROOT / "data" / "01_raw" / "nb201"
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

# the property-based suites (tests/test_fuzz_*.py): 300 examples each, the same ones every run
settings.register_profile(
    "transfernas",
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("transfernas")


@pytest.fixture(autouse=True)
def _own_evaluation_cache(tmp_path_factory, monkeypatch):
    """Each test its own evaluation cache: nothing is read from, or written to, ~/.cache."""
    monkeypatch.setenv("TRANSFERNAS_CACHE", str(tmp_path_factory.mktemp("evaluations")))


@pytest.fixture(scope="session")
def nb201_12() -> pd.DataFrame:
    return pd.read_parquet(NB201_DIR / "nb201_12epoch.parquet")


@pytest.fixture(scope="session")
def nb201_200() -> pd.DataFrame:
    return pd.read_parquet(NB201_DIR / "nb201_200epoch.parquet")


@pytest.fixture(scope="session")
def table(nb201_12: pd.DataFrame) -> NB201Table:
    return NB201Table.from_frame(nb201_12)


class ToyMaskedSpace(SearchSpace):
    """Prefix-dependent masks, to check searchers never emit invalid actions.

    d0 ∈ {0,1,2}; d1 ∈ {0..3} with d1 <= d0 + 1; d2 ∈ {0..3} with d2 != d1.
    """

    name = "toy"

    @property
    def choices(self) -> tuple[int, ...]:
        return (3, 4, 4)

    def mask(self, prefix):
        if len(prefix) == 1:
            return np.arange(4) <= prefix[0] + 1
        if len(prefix) == 2:
            return np.arange(4) != prefix[1]
        return np.ones(3, dtype=bool)

    def decode(self, actions):
        return "-".join(map(str, actions))

    def encode(self, arch):
        return tuple(int(a) for a in arch.split("-"))


class ToyTask:
    """Reward = a fixed random score per architecture (deterministic)."""

    name = "toy/score"

    def __init__(self, space: SearchSpace):
        self.space = space
        self.scores = np.random.default_rng(123).random(64)

    def evaluate(self, actions):
        from transfernas.tasks.base import Evaluation

        code = actions[0] * 16 + actions[1] * 4 + actions[2]
        return Evaluation(float(self.scores[code]), {"code": code})


@pytest.fixture
def toy_space() -> ToyMaskedSpace:
    return ToyMaskedSpace()


def reloaded(searcher, name: str, space, seed: int):
    """A fresh searcher loaded from ``searcher``'s state saved in the weights_only torch
    format (what checkpoints use): continuing it must equal never stopping."""
    from transfernas.searchers import make_searcher

    buf = io.BytesIO()
    torch.save(searcher.state_dict(), buf)
    buf.seek(0)
    resumed = make_searcher(name, space, None, seed=seed)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    return resumed


def learnable_images(n: int, size: int, classes: int, seed: int):
    """``n`` random ``size``-px images whose red channel encodes the class: a trained task on
    them is learnable in a few epochs (chance is 1 / classes)."""
    from transfernas.tasks.trained import ImageData

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    images[..., 0] = (labels * 255 // (classes - 1))[:, None, None]
    return ImageData.from_arrays(images, labels)
