"""A resumed mmengine training that draws what the uninterrupted one would have drawn.

On resume mmengine reseeds every generator and replays the data loader up to the checkpoint's
iteration, so the data augmentation's numpy draws repeat; the model's own torch draws (dropout
in a decode head) do not — a resumed segmentation training diverged from an uninterrupted one
in 262 of 370 tensors after two iterations (measured with the chaos test's settings). This hook
keeps torch's generator states in each checkpoint and puts them back before the first resumed
iteration, after the replay: the result is then the same to the bit (tests/test_chaos.py).
"""

from __future__ import annotations

from typing import Any

import torch
from mmengine.hooks import Hook

KEY = "torch_rng_state"


class TorchRandomState(Hook):
    """Registered on each runner by ``train_and_evaluate``."""

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self._resumed: dict[str, Any] | None = None

    def before_save_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        checkpoint[KEY] = {"cpu": torch.get_rng_state(), "cuda": cuda}

    def after_load_checkpoint(self, runner: Any, checkpoint: dict[str, Any]) -> None:
        self._resumed = checkpoint.get(KEY)  # absent in checkpoints written without the hook

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        if self._resumed is None:
            return
        torch.set_rng_state(self._resumed["cpu"])
        if self._resumed["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._resumed["cuda"])
        self._resumed = None
