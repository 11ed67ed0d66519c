"""PNAS-style sequential model-based optimisation (Liu et al. 2018), space-agnostic.

PNAS grows cells block by block: it expands every kept b-block cell by one block, ranks the
expansions with a learned surrogate, trains only the top K, refits the surrogate and goes on.
Our spaces have a fixed number of decisions, so "cell with b blocks" becomes "prefix of b
decisions", and a prefix is turned into an evaluable architecture by completing it:
  level b → expand each of the K beam prefixes by every valid option of decision b; rank the
            expansions by the surrogate; keep the top K as the new beam; complete each kept
            prefix with the best of ``n_completions`` random completions (by the surrogate)
            that was not evaluated yet; evaluate those K architectures.
The first level evaluates one random completion of every option of decision 0 (PNAS trains
all 1-block cells first). After the last decision a new pass starts from the empty prefix.
Both surrogates learn from every evaluated architecture and all of its prefixes (a prefix's
target is the reward of its completion: the surrogate learns what a prefix promises), by
``train_steps`` Adam steps on random mini-batches so a fit costs the same at 50 and at 1000
evaluations; they are refitted from scratch at every level, seeded from the searcher's
generator. ``surrogate``:
  mlp-ensemble  PNAS's MLP-ensemble variant: ``n_members`` MLPs on the one-hot of a prefix
                (later decisions zero), each fitted on a Poisson bootstrap of the evaluated
                architectures, on z-scored rewards; ranking uses the ensemble mean.
  lstm          the surrogate of the PNAS paper (as the NAS overview in shared/papers gives
                it): an LSTM reads the prefix's tokens through embeddings shared by the
                decisions of one kind (``space.decision_kinds``: inputs share one, ops
                another), its final hidden state goes through a linear layer and a sigmoid
                that regresses the reward, min-max scaled to [0, 1].
Kendall τ of both on held-out NB201 cells: benchmarks/results/pnas_surrogates.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from transfernas.searchers.base import Searcher, SearcherConfig
from transfernas.searchers.nets import onehot
from transfernas.spaces.base import Actions, ActionSpace, decision_kinds, sample_actions


class PNASConfig(SearcherConfig):
    beam_size: int = Field(8, ge=1, description="K: prefixes kept and evaluated per level")
    surrogate: Literal["mlp-ensemble", "lstm"] = Field(
        "mlp-ensemble", description="MLP ensemble on one-hots, or the paper's LSTM on tokens"
    )
    n_members: int = Field(5, ge=1, description="mlp-ensemble: MLPs in the ensemble")
    hidden: int = Field(64, ge=4, description="MLPs' hidden layers; the LSTM's hidden state")
    embedding: int = Field(32, ge=2, description="lstm: D, the token embedding width")
    train_steps: int = Field(100, ge=1, description="Adam steps per surrogate fit")
    batch_size: int = Field(256, ge=1, description="rows per step (a fit costs O(1) in N)")
    learning_rate: float = Field(1e-2, gt=0, description="Adam, surrogate")
    n_completions: int = Field(32, ge=1, description="random completions scored per prefix")


class Ensemble(nn.Module):
    """``n`` independent 2-hidden-layer MLPs evaluated as one batched computation."""

    def __init__(self, n: int, in_dim: int, hidden: int, generator: torch.Generator):
        super().__init__()
        dims = [in_dim, hidden, hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in pairwise(dims):
            bound = 1.0 / a**0.5  # nn.Linear's default init range
            for shape, params in (((n, a, b), self.weights), ((n, 1, b), self.biases)):
                u = torch.rand(shape, generator=generator)
                params.append(nn.Parameter((2 * u - 1) * bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, D) → predictions (n, N)."""
        h = x.unsqueeze(0).expand(len(self.weights[0]), -1, -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = torch.relu(h)
        return h.squeeze(2)


def _adam_steps(
    opt: torch.optim.Optimizer,
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    n_rows: int,
    config: PNASConfig,
    rng: np.random.Generator,
) -> None:
    """``train_steps`` steps, each on ``batch_size`` random rows (a fit costs O(1) in N)."""
    for _ in range(config.train_steps):
        rows = torch.from_numpy(rng.integers(n_rows, size=min(config.batch_size, n_rows)))
        loss = loss_of(rows)
        opt.zero_grad()
        loss.backward()
        opt.step()


class EnsembleSurrogate:
    """Bootstrapped MLP ensemble predicting z-scored reward from (prefix) one-hots."""

    def __init__(self, config: PNASConfig, space: ActionSpace):
        self.config = config
        self.choices = tuple(space.choices)
        self.model: Ensemble | None = None

    def fit(self, actions: np.ndarray, rewards: np.ndarray, groups: np.ndarray, seed: int) -> None:
        """Fit on ``-1``-padded prefixes; row i is a prefix of architecture ``groups[i]``,
        whose reward is ``rewards[groups[i]]``."""
        c = self.config
        gen = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        x = onehot(actions, self.choices)
        self.model = Ensemble(c.n_members, len(x[0]), c.hidden, gen)
        # Poisson(1) bootstrap weights per member and architecture, shared by its prefixes
        w = rng.poisson(1.0, size=(c.n_members, int(groups.max()) + 1))[:, groups]
        weights = torch.as_tensor(w, dtype=torch.float32)
        sd = rewards.std()
        y = (rewards - rewards.mean()) / (sd if sd > 0 else 1.0)
        target = torch.as_tensor(y[groups], dtype=torch.float32)
        model = self.model

        def loss_of(rows: torch.Tensor) -> torch.Tensor:
            err = (model(x[rows]) - target[rows]) ** 2
            return (weights[:, rows] * err).sum() / weights[:, rows].sum().clamp(min=1)

        opt = torch.optim.Adam(model.parameters(), lr=c.learning_rate, fused=True)
        _adam_steps(opt, loss_of, len(x), c, rng)

    def predict(self, actions: np.ndarray) -> np.ndarray:
        assert self.model is not None, "fit the surrogate first"
        with torch.no_grad():
            return self.model(onehot(actions, self.choices)).mean(dim=0).numpy()


class TokenLSTM(nn.Module):
    """Embedding (shared per decision kind) → LSTM → final hidden state → linear → sigmoid."""

    def __init__(self, space: ActionSpace, embedding: int, hidden: int):
        super().__init__()
        kinds = decision_kinds(space)
        sizes = list(zip(space.choices, kinds, strict=True))
        vocab = {k: max(n for n, j in sizes if j == k) for k in kinds}
        start = dict(zip(vocab, np.cumsum([0, *vocab.values()])[:-1].tolist(), strict=True))
        self.register_buffer("first_token", torch.tensor([start[k] for k in kinds]))
        self.embed = nn.Embedding(sum(vocab.values()), embedding)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        """``(N, L)`` actions, ``-1`` after each row's prefix → predicted reward in (0, 1)."""
        length = (actions >= 0).sum(dim=1)
        steps = int(length.max())  # the LSTM is causal: later (padding) steps are not needed
        tokens = actions[:, :steps].clamp(min=0) + self.first_token[:steps]
        out, _ = self.lstm(self.embed(tokens))
        last = out[torch.arange(len(actions)), length - 1]
        return torch.sigmoid(self.head(last)).squeeze(1)


class LSTMSurrogate:
    """PNAS's LSTM predictor, fitted by MSE on rewards min-max scaled into [0, 1]."""

    def __init__(self, config: PNASConfig, space: ActionSpace):
        self.config = config
        self.space = space
        self.model: TokenLSTM | None = None

    def fit(self, actions: np.ndarray, rewards: np.ndarray, groups: np.ndarray, seed: int) -> None:
        """Fit on ``-1``-padded prefixes of architectures ``groups`` with ``rewards``."""
        c = self.config
        rng = np.random.default_rng(seed)
        with torch.random.fork_rng():  # seeded initialisation, global generator untouched
            torch.manual_seed(seed)
            self.model = TokenLSTM(self.space, c.embedding, c.hidden)
        x = torch.from_numpy(np.asarray(actions, dtype=np.int64))
        span = rewards.max() - rewards.min()
        y = (rewards - rewards.min()) / (span if span > 0 else 1.0)
        target = torch.as_tensor(y[groups], dtype=torch.float32)
        model = self.model
        opt = torch.optim.Adam(model.parameters(), lr=c.learning_rate)
        _adam_steps(opt, lambda rows: ((model(x[rows]) - target[rows]) ** 2).mean(), len(x), c, rng)

    def predict(self, actions: np.ndarray) -> np.ndarray:
        assert self.model is not None, "fit the surrogate first"
        with torch.no_grad():
            return self.model(torch.from_numpy(np.asarray(actions, dtype=np.int64))).numpy()


SURROGATES = {"mlp-ensemble": EnsembleSurrogate, "lstm": LSTMSurrogate}


def padded(prefixes: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """Equal-length prefixes as ``(N, length)`` rows, ``-1`` for the decisions not taken."""
    out = np.full((len(prefixes), length), -1, dtype=np.int64)
    if len(prefixes):
        rows = np.asarray(prefixes, dtype=np.int64).reshape(len(prefixes), -1)
        out[:, : rows.shape[1]] = rows
    return out


def prefix_rows(archs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every prefix (length 1..L) of each architecture, ``-1``-padded, and its arch's index."""
    n, L = archs.shape
    keep = np.arange(L)[None, :] < np.arange(1, L + 1)[:, None]  # (L, L): prefix length × pos
    rows = np.where(keep[:, None, :], archs[None, :, :], -1).reshape(L * n, L)
    return rows, np.tile(np.arange(n), L)


class PNAS(Searcher):
    name = "pnas"
    Config = PNASConfig
    config: PNASConfig

    def __init__(self, space, config=None, seed=0):
        super().__init__(space, config, seed)
        self.choices = tuple(space.choices)
        self.surrogate = SURROGATES[self.config.surrogate](self.config, space)
        self.level = 0
        self.beam: list[Actions] = [()]
        self.queue: list[Actions] = []
        self.actions: list[Actions] = []
        self.rewards: list[float] = []

    def ask(self, n: int = 1) -> list[Actions]:
        while len(self.queue) < n:
            self.queue += self._next_level()
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def tell(self, candidates: Sequence[Actions], rewards: Sequence[float]) -> None:
        for actions, reward in zip(candidates, rewards, strict=True):
            self.actions.append(tuple(int(a) for a in actions))
            self.rewards.append(float(reward))

    # ---- one progressive level ---------------------------------------------------------------
    def _next_level(self) -> list[Actions]:
        if self.level == len(self.choices):  # a pass is complete: start the next one
            self.level, self.beam = 0, [()]
        expansions = [(*p, int(o)) for p in self.beam for o in np.flatnonzero(self.space.mask(p))]
        self.level += 1
        taken = set(self.actions) | set(self.queue)
        if not self.rewards:  # nothing to learn from yet: every expansion, completed randomly
            self.beam = expansions[: self.config.beam_size]
            picks = [sample_actions(self.space, self.rng, p) for p in expansions]
        else:
            self._fit()
            scores = self.surrogate.predict(padded(expansions, len(self.choices)))
            order = np.argsort(-scores, kind="stable")[: self.config.beam_size]
            self.beam = [expansions[i] for i in order]
            picks = [self._best_completion(p, taken) for p in self.beam]
        out: list[Actions] = []
        for p in picks:
            if p is not None and p not in taken:
                taken.add(p)
                out.append(p)
        if not out:  # every completion near the beam was evaluated: explore uniformly
            out = self._uniform(taken)
        return out

    def _uniform(self, taken: set[Actions]) -> list[Actions]:
        """Up to K uniform candidates, unevaluated ones if any can be found (a small space may
        be exhausted: then repeats, as the search loop asks for candidates all the same)."""
        draws = [sample_actions(self.space, self.rng) for _ in range(100)]
        fresh = list(dict.fromkeys(d for d in draws if d not in taken))
        return fresh[: self.config.beam_size] or draws[: self.config.beam_size]

    def _best_completion(self, prefix: Actions, taken: set[Actions]) -> Actions | None:
        n = self.config.n_completions
        cands = {sample_actions(self.space, self.rng, prefix) for _ in range(n)}
        fresh = sorted(cands - taken)
        if not fresh:
            return None
        scores = self.surrogate.predict(np.asarray(fresh, dtype=np.int64))
        return fresh[int(np.argmax(scores))]

    def _fit(self) -> None:
        """Refit the surrogate on every evaluated architecture and all of its prefixes."""
        rows, groups = prefix_rows(np.asarray(self.actions, dtype=np.int64))
        seed = int(self.rng.integers(2**31))
        self.surrogate.fit(rows, np.asarray(self.rewards), groups, seed)

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {
            "level": self.level,
            "beam": [list(p) for p in self.beam],
            "queue": [list(a) for a in self.queue],
            "actions": [list(a) for a in self.actions],
            "rewards": list(self.rewards),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The surrogate is refitted from the saved data before it is used again: not stored."""
        super().load_state_dict(state)
        self.level = state["level"]
        self.beam = [tuple(p) for p in state["beam"]]
        self.queue = [tuple(a) for a in state["queue"]]
        self.actions = [tuple(a) for a in state["actions"]]
        self.rewards = list(state["rewards"])
