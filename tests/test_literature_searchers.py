"""L2NAS, TNAS, PNAS-SMBO and the NASNet RNN controller: their maths, and a run on each space.

The ask/tell contract (valid candidates, determinism under a seed, exact resume) is checked
for every registered searcher in test_searchers.py; here is what is particular to each one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from transfernas.searchers import make_searcher
from transfernas.searchers.l2nas import L2NAS, L2NASConfig, check_loss, cosine_epsilon
from transfernas.searchers.nets import onehot
from transfernas.searchers.pnas import (
    PNAS,
    SURROGATES,
    PNASConfig,
    TokenLSTM,
    padded,
    prefix_rows,
)
from transfernas.searchers.rnn_controller import RNNController, masks_of_each
from transfernas.searchers.tnas import TNAS, TNASConfig, TransformerVAE
from transfernas.spaces import NASNetSpace, NB201Space, is_valid
from transfernas.spaces.nasnet import OPS as NASNET_OPS
from transfernas.tasks.tabular import TabularTask


# ---- L2NAS ----------------------------------------------------------------------------------
def test_check_loss_gradient_sign_follows_the_quantile():
    """Under-prediction is pushed up with weight q, over-prediction down with weight 1 − q."""
    q = 0.9
    pred = torch.tensor([0.0, 2.0], requires_grad=True)
    check_loss(pred, torch.tensor([1.0, 1.0]), q).backward()
    assert pred.grad.tolist() == pytest.approx([-q / 2, (1 - q) / 2])


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95])
def test_check_loss_minimiser_is_the_quantile_of_a_known_distribution(q):
    """Fitting a constant to N(3, 2²) samples by gradient descent lands on 3 + 2·Φ⁻¹(q)."""
    samples = torch.from_numpy(np.random.default_rng(0).normal(3.0, 2.0, 20_000)).float()
    c = torch.zeros((), requires_grad=True)
    opt = torch.optim.Adam([c], lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        check_loss(c.expand_as(samples), samples, q).backward()
        opt.step()
    assert c.item() == pytest.approx(3.0 + 2.0 * stats.norm.ppf(q), abs=0.05)
    empirical = (samples <= c.detach()).float().mean().item()
    assert empirical == pytest.approx(q, abs=0.01)


def test_cosine_epsilon_anneals_from_start_to_min_then_stays():
    assert cosine_epsilon(0, 1.0, 0.05, 100) == pytest.approx(1.0)
    assert cosine_epsilon(50, 1.0, 0.05, 100) == pytest.approx(0.525)
    assert cosine_epsilon(100, 1.0, 0.05, 100) == pytest.approx(0.05)
    assert cosine_epsilon(1000, 1.0, 0.05, 100) == pytest.approx(0.05)


def test_l2nas_discretises_alpha_by_argmax_over_valid_options(toy_space):
    agent = L2NAS(toy_space, None, seed=0)
    alpha = np.zeros((3, 4), dtype=np.float32)
    alpha[0] = [0.1, 0.9, 0.2, 0.95]  # option 3 does not exist for d0 (3 options): 1 wins
    alpha[1] = [0.1, 0.2, 0.3, 0.9]  # d1 ≤ d0 + 1 = 2: option 3 is masked, 2 wins
    alpha[2] = [0.1, 0.2, 0.9, 0.3]  # d2 ≠ d1 = 2: option 3 wins
    assert agent.discretise(alpha.ravel()) == (1, 2, 3)


def test_l2nas_state_is_mean_alpha_of_top_k():
    agent = L2NAS(NB201Space(), L2NASConfig(top_k=2), seed=0)
    cands = agent.ask(3)
    assert len(set(cands)) == 3
    alphas = [agent.pending[c][0][1] for c in cands]
    agent.tell(cands, [1.0, 3.0, 2.0])
    assert np.allclose(agent.state(), (alphas[1] + alphas[2]) / 2)


def test_l2nas_actor_moves_towards_what_the_critic_rewards():
    """Reward = 1 when every decision picks option 1: after training, the actor proposes it."""
    space = NB201Space()
    agent = L2NAS(space, L2NASConfig(epsilon_steps=50, actor_lr=1e-3), seed=0)
    target = (1,) * 6
    for _ in range(150):
        cands = agent.ask(1)
        agent.tell(cands, [100.0 * np.mean([a == 1 for a in cands[0]])])
    with torch.no_grad():
        greedy = agent.discretise(agent.actor(torch.from_numpy(agent.state())).numpy())
    # chance level is 6 × 0.2 = 1.2 matches; P(≥ 4 by chance) < 2 %
    assert sum(a == b for a, b in zip(greedy, target, strict=True)) >= 4


def test_l2nas_transfer_rescales_rewards_per_task_and_fine_tunes_with_less_exploration():
    space = NB201Space()
    pre = make_searcher("l2nas-transfer", space, None, seed=0)
    cands = pre.ask(3)
    pre.tell(cands, [70.0, 90.0, 80.0])
    assert pre.targets().tolist() == pytest.approx([0.0, 1.0, 0.5])
    plain = make_searcher("l2nas", space, None, seed=0)
    plain.tell(plain.ask(2), [70.0, 90.0])
    assert plain.targets().tolist() == pytest.approx([0.7, 0.9])
    tuned = make_searcher("l2nas-transfer", space, None, seed=1)
    assert tuned.epsilon() == pytest.approx(1.0)
    tuned.load_network_state(pre.network_state())
    assert tuned.epsilon() == pytest.approx(L2NASConfig().finetune_epsilon_start)
    for name, p in tuned.actor.state_dict().items():
        assert torch.equal(p, pre.actor.state_dict()[name])


# ---- TNAS -----------------------------------------------------------------------------------
def test_vae_reconstruction_improves_on_a_fixed_toy_set():
    space = NB201Space()
    config = TNASConfig()
    rng = np.random.default_rng(0)
    data = torch.as_tensor([space.sample(rng) for _ in range(16)], dtype=torch.long)
    torch.manual_seed(0)
    vae = TransformerVAE(space.choices, config)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)

    def evaluate() -> tuple[float, float]:
        with torch.no_grad():
            _, recon = vae.loss(data, torch.zeros(len(data), config.latent_dim), 0.0)
            mu, _ = vae.encode(data)
            exact = (vae.decode(mu).argmax(dim=2) == data).float().mean().item()
        return recon.item(), exact

    recon_before, exact_before = evaluate()
    for _ in range(300):
        noise = torch.randn(len(data), config.latent_dim)
        loss, _ = vae.loss(data, noise, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    recon_after, exact_after = evaluate()
    assert recon_after < 0.5 * recon_before
    assert exact_after > max(0.8, exact_before + 0.3)


def test_tnas_mixes_uniform_and_vae_samples_with_growing_epsilon():
    space = NB201Space()
    agent = TNAS(space, TNASConfig(train_every=5, train_steps=5, epsilon_inc=0.25), seed=0)
    assert agent.epsilon == 0.0
    for expected in (0.25, 0.5, 0.75, 1.0, 1.0):
        cands = agent.ask(5)
        assert all(is_valid(space, c) for c in cands)
        agent.tell(cands, list(range(5)))
        assert agent.epsilon == pytest.approx(expected)
    assert len(agent.recon_log) == 5
    assert len(set(agent.actions)) == len(agent.actions)  # redraws avoid repeats


# ---- PNAS -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("surrogate", "floor"), [("mlp-ensemble", 0.4), ("lstm", 0.25)])
def test_surrogate_ranks_nb201_cells(table, record_property, surrogate, floor):
    """Fitted as PNAS fits it on 200 random cells (and their prefixes), the surrogate ranks
    2000 others (Kendall τ reported; benchmarks/results/pnas_surrogates.md has the study)."""
    task = TabularTask(table, "cifar100")
    space = task.space
    order = np.random.default_rng(0).permutation(len(task.val))
    train, test = order[:200], order[200:2200]
    cells = np.asarray([space.encode(a) for a in table.arch_str])
    model = SURROGATES[surrogate](PNASConfig(surrogate=surrogate, train_steps=300), space)
    rows, groups = prefix_rows(cells[train])
    model.fit(rows, task.val[train], groups, seed=0)
    tau = stats.kendalltau(model.predict(cells[test]), task.val[test])
    record_property("kendall_tau", round(float(tau.statistic), 3))
    print(f"PNAS {surrogate} Kendall tau on 2000 held-out NB201 cells: {tau.statistic:.3f}")
    assert tau.statistic > floor


def test_prefix_rows_pad_every_prefix_of_every_cell():
    rows, groups = prefix_rows(np.array([[1, 2, 3], [4, 5, 6]]))
    assert rows.tolist() == [
        [1, -1, -1], [4, -1, -1], [1, 2, -1], [4, 5, -1], [1, 2, 3], [4, 5, 6]
    ]  # fmt: skip
    assert groups.tolist() == [0, 1, 0, 1, 0, 1]
    assert padded([(1, 2), (3, 4)], 4).tolist() == [[1, 2, -1, -1], [3, 4, -1, -1]]
    assert onehot(np.array([[1, -1]]), (2, 3)).tolist() == [[0, 1, 0, 0, 0]]


def test_lstm_shares_embeddings_by_decision_kind_and_reads_only_the_prefix():
    nasnet = NASNetSpace(blocks=3)
    lstm = TokenLSTM(nasnet, embedding=4, hidden=8)
    assert lstm.embed.num_embeddings == (3 + 1) + len(NASNET_OPS) + 2  # inputs, ops, combine
    assert lstm.first_token[:5].tolist() == [0, 0, 4, 4, 4 + len(NASNET_OPS)]
    assert TokenLSTM(NB201Space(), 4, 8).embed.num_embeddings == 5  # six op decisions
    full = torch.as_tensor(nasnet.sample(np.random.default_rng(0)))
    prefix = torch.cat([full[:7], torch.full((len(full) - 7,), -1)])
    with torch.no_grad():
        out, _ = lstm.lstm(lstm.embed(full[:7] + lstm.first_token[:7]).unsqueeze(0))
        direct = torch.sigmoid(lstm.head(out[0, -1]))
        assert lstm(prefix.unsqueeze(0)).item() == pytest.approx(direct.item(), abs=1e-6)


def test_pnas_with_the_lstm_surrogate_is_seeded_and_valid():
    space = NASNetSpace(blocks=2)

    def run(seed):
        agent = PNAS(space, PNASConfig(surrogate="lstm", beam_size=3, train_steps=20), seed)
        out = []
        for _ in range(5):
            cands = agent.ask(2)
            agent.tell(cands, [float(sum(c)) for c in cands])
            out += cands
        return out

    first = run(0)
    assert all(is_valid(space, c) for c in first) and len(set(first)) == len(first)
    assert run(0) == first and run(1) != first


def test_pnas_first_level_evaluates_every_option_of_the_first_decision(toy_space):
    agent = PNAS(toy_space, PNASConfig(beam_size=2), seed=0)
    first = agent.ask(3)
    assert sorted(c[0] for c in first) == [0, 1, 2]
    agent.tell(first, [0.1, 0.9, 0.5])
    second = agent.ask(1) + agent.queue
    assert agent.level == 2 and len(agent.beam) == 2
    assert all(len(p) == 2 for p in agent.beam)
    assert all(c[:2] in agent.beam for c in second)
    assert not set(second) & set(first)


# ---- NASNet RNN controller ------------------------------------------------------------------
def test_rnn_controller_starts_near_uniform_and_learns_a_rewarded_decision(toy_space):
    agent = RNNController(toy_space, None, seed=0)
    first = [agent.ask(1)[0][0] for _ in range(600)]
    assert np.bincount(first, minlength=3) / 600 == pytest.approx([1 / 3] * 3, abs=0.06)
    agent.config = agent.Config(learning_rate=0.01)
    for g in agent.optimizer.param_groups:
        g["lr"] = 0.01
    for _ in range(200):
        cands = agent.ask(4)
        agent.tell(cands, [float(c[0] == 2) for c in cands])
    late = [c[0] for c in agent.ask(200)]
    assert np.mean(np.asarray(late) == 2) > 0.8


def test_rnn_controller_log_prob_matches_its_sampling(toy_space):
    """exp(log π) summed over every valid sequence is 1: sampling and scoring agree."""
    agent = RNNController(toy_space, None, seed=0)
    seqs = [
        (a, b, c)
        for a in range(3)
        for b in range(4)
        for c in range(4)
        if is_valid(toy_space, (a, b, c))
    ]
    actions = np.asarray(seqs)
    with torch.no_grad():
        logp, _ = agent.policy.log_prob(
            actions, masks_of_each(toy_space, actions), agent.policy.logits(actions)
        )
    assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-5)


# ---- the residual-block space, through the adapt / search stage code ------------------------
@pytest.fixture(scope="module")
def resblock_inputs(tmp_path_factory):
    """Trained sub-dataset tasks on the residual-block space, shrunk to run in seconds."""
    from transfernas.data.build import SubdatasetParams
    from transfernas.data.sources import ImageFolderSource
    from transfernas.spaces.resblock import ResBlockSpaceParams
    from transfernas.stages import StageInputs
    from transfernas.tasks.subdataset import TrainedTaskParams

    from .conftest import ROOT

    out = tmp_path_factory.mktemp("subdatasets")
    return StageInputs(
        source=ImageFolderSource(ROOT / "data/01_raw/imagenet_sample"),
        subdatasets=SubdatasetParams(n_classes=[10], image_sizes=[16], workers=1, out_dir=str(out)),
        trained_task=TrainedTaskParams(
            space=ResBlockSpaceParams(channel_scale=0.25),
            training={"epochs": 1, "batch_size": 64},
            reward={"measure_latency": False},
        ),
    )


def _target(name: str):
    from transfernas.stages import TargetSearchParams

    return TargetSearchParams(
        searcher=name, target={"n_classes": 10, "image_size": 16}, budget=3, seed=0
    )


@pytest.mark.parametrize("name", ["l2nas", "tnas", "pnas", "nasnet-rnn"])
def test_searcher_runs_on_the_resblock_space(resblock_inputs, name):
    from transfernas.searchers import SEARCHERS
    from transfernas.spaces.resblock import ResArch
    from transfernas.stages import run_target_search

    history, task = run_target_search(_target(name), SEARCHERS[name].Config(), resblock_inputs)
    assert len(history) == 3 and all(r["status"] == "ok" for r in history)
    assert all(isinstance(task.space.decode(r["actions"]), ResArch) for r in history)
    assert all(0.0 <= r["reward"] <= 100.0 for r in history)


def test_l2nas_transfer_meta_trains_then_adapts_on_the_resblock_space(resblock_inputs):
    from transfernas.stages import MetaTrainParams, run_meta_training, run_target_search

    config = L2NASConfig(batch_size=2)  # train from the second evaluation on: tiny budgets
    params = MetaTrainParams(searcher="l2nas-transfer", n_epochs=2, n_search=3, seed=1)
    checkpoint, curves, evaluations = run_meta_training(params, config, resblock_inputs)
    assert len(evaluations) == 6 and len(curves) == 2
    assert {"loss_critic", "loss_actor"} <= set(curves.columns)
    assert checkpoint["searcher"] == "l2nas-transfer" and checkpoint["space"]["name"] == "resblock"
    history, _ = run_target_search(
        _target("l2nas-transfer"), config, resblock_inputs, checkpoint=checkpoint
    )
    assert len(history) == 3 and all(r["status"] == "ok" for r in history)
