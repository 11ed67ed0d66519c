"""Does a reward rank architectures? Rank correlation of rewards against NAS-Bench-201.

Every reward a search optimises on NB201 cells (a short training, a zero-cost score) can be
checked against the table: Spearman ρ of the rewards of the evaluated cells against the same
cells' NB201 12-epoch validation and 200-epoch test accuracies (read for the report only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.tabular import COLUMNS_12, COLUMNS_200, DATASETS, NB201Table


def nb201_spearman(
    archs: Sequence[str], rewards: Sequence[float], t12: pd.DataFrame, t200: pd.DataFrame
) -> dict[str, float]:
    """``{"<dataset>/val12": ρ, "<dataset>/test200": ρ}`` over the distinct evaluated cells."""
    table = NB201Table.from_frame(t12)
    space = NB201Space()
    frame = pd.DataFrame({"arch": list(archs), "reward": np.asarray(rewards, dtype=float)})
    frame = frame.drop_duplicates("arch")
    if len(frame) < 3:
        raise ValueError(f"need at least 3 distinct cells for a rank correlation, got {len(frame)}")
    codes = space.codes(np.array([space.encode(a) for a in frame["arch"]]))
    index = table.index_of_code[codes]
    out: dict[str, float] = {}
    for ds in DATASETS:
        val12 = table.columns[COLUMNS_12[ds][0]][index]
        test200 = t200[COLUMNS_200[ds]].to_numpy()[index]
        out[f"{ds}/val12"] = float(stats.spearmanr(frame["reward"], val12).statistic)
        out[f"{ds}/test200"] = float(stats.spearmanr(frame["reward"], test200).statistic)
    return out
