"""Multi-objective reward R = P(m) · (LAT(m) / T_target)^w (CATCH §4.3.1, after MnasNet).

With w < 0 a network slower than the target is penalised and a faster one rewarded, smoothly:
at w = −0.05 (the paper's value) doubling the latency costs 3.4 % of the reward.
"""

from __future__ import annotations

import numpy as np

PAPER_W = -0.05


def latency_reward(performance, latency_ms, target_ms: float, w: float = PAPER_W):
    """Vectorised over numpy arrays (or plain floats)."""
    if target_ms <= 0:
        raise ValueError(f"target latency must be > 0 ms, got {target_ms}")
    latency = np.asarray(latency_ms, dtype=np.float64)
    if np.any(latency <= 0):
        raise ValueError("latencies must be > 0 ms")
    return np.asarray(performance, dtype=np.float64) * (latency / target_ms) ** w
