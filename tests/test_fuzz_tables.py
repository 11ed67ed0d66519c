"""Property-based test of the NB201 table reader: the shipped 12-epoch table with cells, rows or
columns changed is either read value for value or rejected with a TableError naming it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.tabular import COLUMNS_12, DATASETS, NB201Table, TableError

from .conftest import ROOT

FUZZ = settings(
    max_examples=500,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FRAME = pd.read_parquet(ROOT / "data/01_raw/nb201/nb201_12epoch.parquet")
ACC = [c for d in DATASETS for c in COLUMNS_12[d]]
VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 100),
    st.sampled_from([-0.5, 100.5, 0.0, 100.0, 1e300]),
)
ROW = st.integers(0, len(FRAME) - 1)


@st.composite
def frames(draw) -> pd.DataFrame:
    df = FRAME.copy()
    for _ in range(draw(st.integers(1, 3))):
        op = draw(
            st.sampled_from(
                [
                    "cell",
                    "cell",
                    "cell",
                    "drop_col",
                    "drop_row",
                    "dup_row",
                    "swap_index",
                    "arch",
                    "text",
                ]
            )
        )
        if op == "cell":
            df.loc[draw(ROW), draw(st.sampled_from(ACC))] = draw(VALUE)
        elif op == "drop_col":
            df = df.drop(columns=[draw(st.sampled_from(list(df.columns)))])
        elif op == "drop_row":
            df = df.drop(index=draw(ROW)).reset_index(drop=True)
        elif op == "dup_row":
            i, j = draw(ROW), draw(ROW)
            df.loc[j, "arch_str"] = df.loc[i, "arch_str"]
        elif op == "swap_index":
            i, j = draw(ROW), draw(ROW)
            df.loc[[i, j], "arch_index"] = df.loc[[j, i], "arch_index"].to_numpy()
        elif op == "arch":
            df.loc[draw(ROW), "arch_str"] = draw(
                st.text(max_size=12) | st.just("|none~0|+|none~0|none~1|+|none~0|none~1|none~3|")
            )
        else:
            col = draw(st.sampled_from(ACC))
            df[col] = df[col].astype(object)
            df.loc[draw(ROW), col] = draw(st.text(max_size=3))
    return df


@FUZZ
@given(df=frames())
@example(df=FRAME)
@example(
    df=FRAME.assign(**{"cifar10-val": FRAME["cifar10-val"].where(FRAME.index != 7)})
)  # NaN: was a NaN reward
def test_table_is_rejected_or_read_value_for_value(df):
    try:
        table = NB201Table.from_frame(df)
    except TableError as e:
        assert str(e).startswith("NB201 12-epoch table: "), e
        return
    space = NB201Space()
    rows = np.random.default_rng(0).integers(0, len(df), 200)
    for row in rows:
        code = space.codes(np.array([space.encode(df["arch_str"].iloc[row])]))[0]
        index = table.index_of_code[code]
        assert index == df["arch_index"].iloc[row]
        for col in ACC:
            assert table.columns[col][index] == df[col].iloc[row]
