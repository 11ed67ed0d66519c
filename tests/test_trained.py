"""Trained tasks: batched augmentation, the NB201 network, seeded training, latency, reward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transfernas.spaces import NB201Space, ResBlockSpace
from transfernas.tasks.latency import LatencyConfig, measure_latency
from transfernas.tasks.trained import (
    MEAN,
    STD,
    RewardConfig,
    TrainedTask,
    TrainingConfig,
    augment_batch,
    to_input,
    train_model,
)

from .conftest import learnable_images


def test_augment_batch_equals_a_per_sample_crop_and_flip():
    images = torch.randint(0, 256, (6, 8, 8, 3), dtype=torch.uint8)
    out = augment_batch(images, 2, True, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)  # replay the same draws
    oy = torch.randint(0, 5, (6, 1), generator=g)
    ox = torch.randint(0, 5, (6, 1), generator=g)
    flip = torch.rand(6, 1, generator=g) < 0.5
    padded = torch.nn.functional.pad(images, (0, 0, 2, 2, 2, 2))
    for i in range(6):
        crop = padded[i, oy[i, 0] : oy[i, 0] + 8, ox[i, 0] : ox[i, 0] + 8]
        if flip[i, 0]:
            crop = crop.flip(1)
        assert torch.equal(out[i], crop)
    assert torch.equal(augment_batch(images, 0, False, g), images)


def test_to_input_normalises_into_channels_last():
    images = torch.full((2, 4, 4, 3), 128, dtype=torch.uint8)
    x = to_input(images, channels_last=True)
    assert x.shape == (2, 3, 4, 4) and x.is_contiguous(memory_format=torch.channels_last)
    expected = torch.tensor([(128 - m) / s for m, s in zip(MEAN, STD, strict=True)])
    assert torch.allclose(x[0, :, 0, 0], expected)


def test_nb201_network_drops_zero_edges_and_trains_every_cell():
    space = NB201Space(channels=4, cells=1)
    all_none = space.build(space.encode("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), 3)
    assert all_none(torch.randn(2, 3, 8, 8)).shape == (2, 3)
    convs = space.build(
        space.encode(
            "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|"
        ),
        3,
    )
    cell = convs.features[2]
    assert sorted(cell.edges) == ["0_1", "0_2", "0_3", "1_3", "2_3"]


def test_trained_task_is_seeded_by_architecture_and_learns():
    train, val = learnable_images(96, 8, 3, 0), learnable_images(48, 8, 3, 1)
    space = NB201Space(channels=4, cells=1)
    config = TrainingConfig(epochs=6, batch_size=32, crop_padding=0)
    task = TrainedTask("toy", space, train, val, 3, config, RewardConfig(measure_latency=False))
    a = space.encode(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    )
    b = space.encode("|skip_connect~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|none~1|none~2|")
    first = task.evaluate(a)
    task.evaluate(b)  # evaluating another architecture in between changes nothing
    again = task.evaluate(a)
    timing = {"train_s", "train_images_per_s"}
    assert first.reward == again.reward
    assert {k: v for k, v in first.metrics.items() if k not in timing} == {
        k: v for k, v in again.metrics.items() if k not in timing
    }
    assert first.metrics["val_acc"] > 60  # far above chance (33 %): the task is learnable
    other_seed = TrainedTask(
        "toy", space, train, val, 3, config, RewardConfig(measure_latency=False), seed=1
    )
    assert other_seed.evaluate(a).metrics["train_loss"] != first.metrics["train_loss"]


def test_latency_reward_combines_accuracy_and_measured_latency():
    train, val = learnable_images(32, 8, 2, 0), learnable_images(16, 8, 2, 1)
    space = ResBlockSpace(stem="small", channel_scale=0.2)
    latency = LatencyConfig(input_size=(16, 16), repeats=5, warmup=1)
    task = TrainedTask(
        "toy",
        space,
        train,
        val,
        2,
        TrainingConfig(epochs=1, batch_size=16),
        RewardConfig(target_ms=1.0, w=-0.05),
        latency,
    )
    ev = task.evaluate(space.sample(np.random.default_rng(0)))
    m = ev.metrics
    assert m["latency_ms"] > 0 and 0 <= m["latency_cv"] < 1
    assert ev.reward == pytest.approx(m["val_acc"] * m["latency_ms"] ** -0.05)
    with pytest.raises(ValueError, match="measure_latency"):
        TrainedTask(
            "t", space, train, val, 2, reward=RewardConfig(target_ms=1.0, measure_latency=False)
        )


def test_latency_measurement_records_its_setting():
    net = NB201Space(channels=4, cells=1).build((3,) * 6, 10)
    lat = measure_latency(net, LatencyConfig(input_size=(20, 12), repeats=8, threads=1))
    assert lat.input_shape == (1, 3, 20, 12) and lat.repeats == 8 and lat.threads == 1
    assert lat.median_ms > 0 and lat.iqr_ms >= 0 and lat.device
    assert torch.get_num_threads() >= 1  # the previous thread setting was restored


def test_a_cuda_graph_needs_a_cuda_device():
    with pytest.raises(ValueError, match="cuda_graph: true needs device: cuda"):
        LatencyConfig(cuda_graph=True)
    assert LatencyConfig(cuda_graph=True, device="cuda:1").cuda_graph  # checked when measured


def test_training_resumes_from_its_checkpoint_as_if_never_killed(tmp_path):
    """A run killed after epoch 1 of 3 and rerun ends with the uninterrupted run's weights."""
    data = learnable_images(24, 8, 3, seed=0)
    config = TrainingConfig(epochs=3, batch_size=8)

    def run(checkpoint=None, on_epoch=None):
        torch.manual_seed(0)
        model = NB201Space(channels=4, cells=1).build((1, 3, 0, 2, 1, 3), 3)
        fit = train_model(
            model, data, config, torch.Generator().manual_seed(1), None, checkpoint, on_epoch
        )
        return model, fit

    def killed(epoch, _metrics):
        if epoch == 1:  # before epoch 1's checkpoint: as a kill -9 mid-run
            raise KeyboardInterrupt

    plain, plain_fit = run()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ckpt.pt", killed)
    assert torch.load(tmp_path / "ckpt.pt", weights_only=False)["epoch"] == 0
    seen = []
    resumed, resumed_fit = run(tmp_path / "ckpt.pt", lambda e, _m: seen.append(e))
    assert seen == [1, 2] and resumed_fit == plain_fit
    for a, b in zip(plain.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
