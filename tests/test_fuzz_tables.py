"""Property-based tests of the NB201 table readers: the shipped 12- and 200-epoch tables with
cells, rows or columns changed are either read value for value or rejected with a TableError
naming the table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

from transfernas.spaces.nb201 import NB201Space
from transfernas.tasks.tabular import (
    COLUMNS_12,
    COLUMNS_200,
    DATASETS,
    NB201Table,
    TableError,
    check_test200,
)

from .conftest import ROOT

FRAME = pd.read_parquet(ROOT / "data/01_raw/nb201/nb201_12epoch.parquet")
ACC = [c for d in DATASETS for c in COLUMNS_12[d]]
FRAME_200 = pd.read_parquet(ROOT / "data/01_raw/nb201/nb201_200epoch.parquet")
ACC_200 = list(COLUMNS_200.values())
VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 100),
    st.sampled_from([-0.5, 100.5, 0.0, 100.0, 1e300]),
)


@st.composite
def frames(draw, base: pd.DataFrame = FRAME, acc: list[str] = ACC) -> pd.DataFrame:
    df = base.copy()
    ops = ["cell", "cell", "cell", "drop_col", "drop_row", "dup_row", "swap_index", "arch", "text"]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(ops))
        row = st.integers(0, len(df) - 1)
        col = st.sampled_from([c for c in acc if c in df.columns] or ["arch_str"])
        if op == "cell" and "arch_str" in df.columns:
            df.loc[draw(row), draw(col)] = draw(VALUE)
        elif op == "drop_col":
            df = df.drop(columns=[draw(st.sampled_from(list(df.columns)))])
        elif op == "drop_row":
            df = df.drop(index=draw(row)).reset_index(drop=True)
        elif op == "dup_row" and "arch_str" in df.columns:
            df.loc[draw(row), "arch_str"] = df.loc[draw(row), "arch_str"]
        elif op == "swap_index" and "arch_index" in df.columns:
            i, j = draw(row), draw(row)
            df.loc[[i, j], "arch_index"] = df.loc[[j, i], "arch_index"].to_numpy()
        elif op == "arch" and "arch_str" in df.columns:
            bad = st.text(max_size=12) | st.just("|none~0|+|none~0|none~1|+|none~0|none~1|none~3|")
            df.loc[draw(row), "arch_str"] = draw(bad)
        elif op == "text":
            name = draw(col)
            df[name] = df[name].astype(object)
            df.loc[draw(row), name] = draw(st.text(max_size=3))
    return df


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


@given(df=frames(FRAME_200, ACC_200))
@example(df=FRAME_200)
@example(df=FRAME_200.assign(cifar100=FRAME_200["cifar100"].where(FRAME_200.index != 3)))  # NaN
@example(df=FRAME_200.drop(index=5).reset_index(drop=True))  # was the next cell read by index
def test_200_epoch_table_is_rejected_or_read_value_for_value(df):
    """Reports read it by arch string (a cell found on a sub-dataset) and by index (NB201)."""
    try:
        checked = check_test200(df)
    except TableError as e:
        assert str(e).startswith("NB201 200-epoch table: "), e
        return
    by_arch = pd.Index(checked["arch_str"])
    assert by_arch.is_unique
    rows = np.random.default_rng(0).integers(0, len(df), 200)
    for row in rows:
        match = by_arch.get_loc(FRAME["arch_str"].iloc[row])
        for col in ACC_200:
            value = float(checked[col].iloc[match])
            assert value == df[col].iloc[match] and 0 <= value <= 100
        assert checked["arch_index"].iloc[row] == row
