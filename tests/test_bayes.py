"""BASE: Gumbel-softmax statistics, the Reptile outer step, derived cells, meta-training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transfernas.bayes.base import BASE, BASEConfig, reptile_step, temperature
from transfernas.bayes.supernet import SuperNet, gumbel_softmax, kl_to_uniform
from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.trained import ImageData

LOGITS = torch.tensor([[1.0, 0.0, -1.0, 2.0, 0.5]])
PROBS = torch.softmax(LOGITS, dim=-1)[0].numpy()


def _frequencies(z: torch.Tensor) -> np.ndarray:
    return np.bincount(z.argmax(dim=-1).flatten().numpy(), minlength=5) / z.shape[0]


def test_gumbel_softmax_approaches_the_categorical_as_tau_goes_to_zero():
    gen = torch.Generator().manual_seed(0)
    logits = LOGITS.expand(40_000, -1)
    warm = gumbel_softmax(logits, 5.0, hard=False, generator=gen)
    cold = gumbel_softmax(logits, 0.02, hard=False, generator=gen)
    # at low τ every sample is (nearly) one-hot; at high τ it is spread out
    assert cold.max(dim=-1).values.mean() > 0.99
    assert warm.max(dim=-1).values.mean() < 0.5
    # and which op wins follows softmax(φ) (the Gumbel-max trick, exact for any τ)
    assert _frequencies(cold) == pytest.approx(PROBS, abs=0.01)
    assert cold.mean(dim=0).numpy() == pytest.approx(PROBS, abs=0.01)


def test_straight_through_sample_is_one_hot_with_the_soft_gradient():
    phi = LOGITS.clone().requires_grad_(True)
    z = gumbel_softmax(phi, 1.0, hard=True, generator=torch.Generator().manual_seed(1))
    assert sorted(z.detach()[0].tolist()) == [0.0, 0.0, 0.0, 0.0, 1.0]
    (z * torch.arange(5.0)).sum().backward()
    assert phi.grad is not None and phi.grad.abs().sum() > 0


def test_kl_to_uniform_is_zero_at_uniform_and_positive_elsewhere():
    assert kl_to_uniform(torch.zeros(6, 5)).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_to_uniform(LOGITS).item() > 0.1


def test_reptile_step_moves_meta_weights_toward_task_adapted_weights():
    """Toy quadratics L_i(w) = ½‖w − c_i‖²: SGD from w, then the outer step."""
    meta = {"w": torch.tensor([0.0, 0.0]), "count": torch.tensor(3)}
    optima = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])]
    adapted = []
    for c in optima:
        w = meta["w"].clone()
        for _ in range(5):
            w -= 0.3 * (w - c)  # gradient of the quadratic
        adapted.append({"w": w, "count": torch.tensor(7)})
    stepped = reptile_step(meta, adapted, lr=0.5)
    mean = torch.stack([a["w"] for a in adapted]).mean(0)
    assert torch.allclose(stepped["w"], meta["w"] + 0.5 * mean)
    for a in adapted:  # closer to every task's adapted weights than before
        assert (stepped["w"] - a["w"]).norm() < (meta["w"] - a["w"]).norm()
    assert torch.allclose(reptile_step(meta, adapted, lr=1.0)["w"], mean)
    assert stepped["count"].item() == 3  # integer buffers are not averaged


def test_temperature_anneals_geometrically():
    config = BASEConfig(tau_start=2.0, tau_end=0.5)
    assert temperature(config, 0, 5) == pytest.approx(2.0)
    assert temperature(config, 2, 5) == pytest.approx(1.0)
    assert temperature(config, 4, 5) == pytest.approx(0.5)


def test_supernet_heads_bring_16_and_32_px_to_one_resolution():
    net = SuperNet(4, 1, 10, [16, 32, 224])
    z = torch.full((6, 5), 0.2)
    for size, features in ((16, 16), (32, 16), (224, 28)):
        assert net.heads[str(size)](torch.randn(1, 3, size, size)).shape[-1] == features
        assert net(torch.randn(2, 3, size, size), z).shape == (2, 10)
    with pytest.raises(ValueError, match="no featurisation head for 64 px"):
        net(torch.randn(2, 3, 64, 64), z)


def _task(seed: int, n: int = 96, size: int = 16, classes: int = 10) -> ImageData:
    """Classes told apart by their mean colour: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=n)
    base = rng.integers(0, 256, size=(classes, 3))
    images = base[labels][:, None, None, :] + rng.normal(0, 20, size=(n, size, size, 3))
    return ImageData.from_arrays(np.clip(images, 0, 255).astype(np.uint8), labels)


@pytest.mark.parametrize("derive", ["argmax", "best_of_k"])
def test_meta_training_and_adaptation_derive_a_valid_nb201_cell(derive, table):
    config = BASEConfig(channels=4, inner_steps=3, adapt_steps=3, tasks_per_epoch=2, derive=derive)
    base = BASE(config, seed=0)
    before = base.state_dict()
    stats = [base.meta_epoch([_task(2 * e), _task(2 * e + 1)], n_epochs=2) for e in range(2)]
    assert [s["epoch"] for s in stats] == [0, 1] and stats[0]["tau"] == 2.0
    assert not torch.equal(before["phi"], base.phi)  # the posterior moved the prior
    actions, phi, info = base.adapt(_task(10), _task(11), seed=3)
    arch = NB201Space().decode(actions)
    assert NB201Space().encode(arch) == actions
    assert arch in set(table.arch_str)
    assert phi.shape == (6, 5) and np.isfinite(info["adapt_loss"])
    if derive == "best_of_k":
        assert len(info["sample_accuracies"]) == config.n_samples


def test_meta_epoch_is_deterministic_and_state_round_trips():
    config = BASEConfig(channels=4, inner_steps=2, tasks_per_epoch=1)
    a, b = BASE(config, seed=5), BASE(config, seed=5)
    a.meta_epoch([_task(0)], 3)
    b.load_state_dict(a.state_dict())
    for agent in (a, b):
        agent.meta_epoch([_task(1)], 3)
    assert torch.equal(a.phi, b.phi)
    for name, w in a.net.state_dict().items():
        assert torch.equal(w, b.net.state_dict()[name])


# ---- the meta_train / adapt stages with searcher: base --------------------------------------
TINY = {"channels": 4, "inner_steps": 2, "adapt_steps": 3, "tasks_per_epoch": 2}


@pytest.fixture(scope="module")
def base_inputs(tmp_path_factory, nb201_12):
    from transfernas.data.build import SubdatasetParams
    from transfernas.data.sources import ImageFolderSource
    from transfernas.stages import StageInputs

    from .conftest import ROOT

    out = tmp_path_factory.mktemp("subdatasets")
    return StageInputs(
        nb201_12,
        ImageFolderSource(ROOT / "data/01_raw/imagenet_sample"),
        SubdatasetParams(image_sizes=[16], workers=1, out_dir=str(out)),
    )


def test_base_meta_trains_then_adapts_to_a_held_out_nb201_proxy(base_inputs, tmp_path):
    from transfernas.searchers import SearcherConfig
    from transfernas.stages import (
        MetaTrainParams,
        TargetSearchParams,
        run_meta_training,
        run_target_search,
    )

    params = MetaTrainParams(searcher="base", n_epochs=2, base=TINY)
    checkpoint, curves, evaluations = run_meta_training(params, SearcherConfig(), base_inputs)
    assert checkpoint["searcher"] == "base" and len(checkpoint["tasks"]) == 4
    assert all(t.endswith("10cls@16px") for t in checkpoint["tasks"])
    assert list(curves["epoch"]) == [0, 1] and {"loss", "tau", "phi_entropy"} <= set(curves)
    assert evaluations.empty
    target = TargetSearchParams(
        searcher="base",
        task="nb201",
        dataset="cifar10-valid",
        target={"n_classes": 10, "image_size": 16, "seed": 3},
        budget=3,
        workdir=str(tmp_path / "adapt"),
    )
    history, task = run_target_search(target, SearcherConfig(), base_inputs, checkpoint)
    records = list(history)
    assert len(records) == 3 and len({tuple(r["actions"]) for r in records}) == 3
    derived = NB201Space().decode(records[0]["actions"])
    assert (
        records[0]["arch"] == derived
        and records[0]["reward"] == task.evaluate(records[0]["actions"]).reward
    )
    # a rerun resumes: nothing is adapted or evaluated again
    again, _ = run_target_search(target, SearcherConfig(), base_inputs, checkpoint)
    assert [r["actions"] for r in again] == [r["actions"] for r in records]
    # on a sub-dataset target the derived cell is trained from scratch by the trained task
    from dataclasses import replace

    from transfernas.spaces.nb201 import NB201SpaceParams
    from transfernas.tasks.subdataset import TrainedTaskParams

    trained = replace(
        base_inputs,
        trained_task=TrainedTaskParams(
            space=NB201SpaceParams(channels=4, cells=1),
            training={"epochs": 1, "batch_size": 64},
            reward={"measure_latency": False},
        ),
    )
    on_data = target.model_copy(update={"task": "subdataset", "budget": 1, "workdir": None})
    trained_history, trained_task = run_target_search(
        on_data, SearcherConfig(), trained, checkpoint
    )
    (record,) = list(trained_history)
    assert record["status"] == "ok" and "val_acc" in record["metrics"]
    assert trained_task.name.endswith("10cls@16px")
    with pytest.raises(ValueError, match="adapts a BASE meta_checkpoint"):
        run_target_search(target, SearcherConfig(), base_inputs, checkpoint | {"searcher": "rea"})


def test_base_meta_training_resumes_after_a_crash_without_changing_the_result(
    base_inputs, tmp_path
):
    from transfernas.bayes.stage import meta_train_base

    config = BASEConfig(**TINY)
    source, sub = base_inputs.source, base_inputs.subdatasets
    straight, curves, _ = meta_train_base(config, source, sub, 3, seed=1)

    def crash(stats):
        if stats["epoch"] == 1:
            raise KeyboardInterrupt  # killed after the checkpoint of epoch 1

    with pytest.raises(KeyboardInterrupt):
        meta_train_base(config, source, sub, 3, seed=1, workdir=tmp_path, on_epoch=crash)
    resumed, resumed_curves, _ = meta_train_base(config, source, sub, 3, seed=1, workdir=tmp_path)
    assert resumed_curves == curves
    assert torch.equal(resumed.phi, straight.phi)
