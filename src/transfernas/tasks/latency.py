"""Measured inference latency: warm-up, repeats, median and spread, batch 1 by default.

The median over repeats is the reported latency (robust to the odd scheduler hiccup); the
spread (IQR, coefficient of variation) says how much to trust it. The thread count, device and
input size travel with every measurement so latencies from different machines are never mixed
up. CUDA timings synchronise before reading the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from transfernas.environment import device_name


class LatencyConfig(BaseModel):
    """How latency is measured (the ``latency`` block of the trained-task parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_size: tuple[int, int] = Field((32, 32), description="(H, W) of the timed input")
    batch_size: int = Field(1, ge=1)
    warmup: int = Field(5, ge=0, description="untimed forward passes first")
    repeats: int = Field(30, ge=3, description="timed forward passes")
    threads: int = Field(1, ge=1, description="torch CPU threads while timing")
    device: str = Field("cpu", description="cpu | cuda | cuda:N")
    channels_last: bool | None = Field(None, description="null = on CUDA only")
    cuda_graph: bool = Field(
        False, description="time replays of the forward captured once as a CUDA graph (CUDA)"
    )

    @model_validator(mode="after")
    def _graph_needs_cuda(self) -> LatencyConfig:
        if self.cuda_graph and not self.device.startswith("cuda"):
            raise ValueError(f"cuda_graph: true needs device: cuda (or cuda:N), got {self.device}")
        return self


@dataclass(frozen=True)
class Latency:
    median_ms: float
    mean_ms: float
    std_ms: float
    iqr_ms: float
    cv: float  # std / mean
    repeats: int
    threads: int
    device: str
    input_shape: tuple[int, ...]

    def as_metrics(self, prefix: str = "latency") -> dict[str, float]:
        return {
            f"{prefix}_ms": self.median_ms,
            f"{prefix}_iqr_ms": self.iqr_ms,
            f"{prefix}_cv": self.cv,
        }

    def as_row(self) -> dict[str, object]:
        return asdict(self) | {"input_shape": "x".join(map(str, self.input_shape))}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_latency(
    model: nn.Module, config: LatencyConfig | None = None, input_shape: Sequence[int] | None = None
) -> Latency:
    """Time ``model`` in eval mode on a random input: ``batch_size`` × ``input_shape`` (default
    3 × ``config.input_size``; one layer alone takes its own input's shape)."""
    config = config if config is not None else LatencyConfig()
    device = torch.device(config.device)
    channels_last = device.type == "cuda" if config.channels_last is None else config.channels_last
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.eval().to(device, memory_format=memory)
    shape = (3, *config.input_size) if input_shape is None else tuple(input_shape)
    x = torch.randn(config.batch_size, *shape, device=device)
    if x.dim() == 4:
        x = x.contiguous(memory_format=memory)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = np.empty(config.repeats)
    with torch_threads(config.threads), torch.inference_mode():
        for _ in range(config.warmup):
            model(x)
        sync()
        forward = _captured(model, x) if config.cuda_graph else (lambda: model(x))
        for i in range(config.repeats):
            start = time.perf_counter()
            forward()
            sync()
            times[i] = (time.perf_counter() - start) * 1e3
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    mean, std = float(times.mean()), float(times.std(ddof=1))
    return Latency(
        median_ms=float(median),
        mean_ms=mean,
        std_ms=std,
        iqr_ms=float(q3 - q1),
        cv=std / mean,
        repeats=config.repeats,
        threads=config.threads,
        device=device_name(device),
        input_shape=tuple(x.shape),
    )


def _captured(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """The forward on ``x`` captured once as a CUDA graph; replaying it launches every kernel
    at once, without Python or launch overhead (what a deployed, graph-captured model pays)."""
    side = torch.cuda.Stream(x.device)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(side):  # capture needs warmed-up kernels (cuDNN picks) off-stream
        for _ in range(3):
            model(x)
    torch.cuda.current_stream(x.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(x)
    return graph.replay
