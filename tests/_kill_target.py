"""Child process for the SIGKILL test: a slow NB201 search writing a durable history."""

import sys
import time

import pandas as pd

from transfernas.history import History
from transfernas.search import run_search
from transfernas.searchers import make_searcher
from transfernas.tasks.tabular import NB201Table, TabularTask


class SlowTask(TabularTask):
    def evaluate(self, actions):
        time.sleep(0.02)
        return super().evaluate(actions)


def main(table_path: str, out_dir: str, searcher: str, budget: int) -> None:
    task = SlowTask(NB201Table.from_frame(pd.read_parquet(table_path)), "cifar100")
    run_search(
        task.space,
        task,
        make_searcher(searcher, task.space, None, seed=11),
        budget,
        history=History(f"{out_dir}/history.jsonl"),
        checkpoint=f"{out_dir}/searcher.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
