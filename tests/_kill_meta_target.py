"""Child process for the meta-training SIGKILL test: slow NB201 tasks, durable workdir."""

import sys
import time

import pandas as pd

from transfernas.meta import meta_train, scheduled
from transfernas.searchers import make_searcher
from transfernas.tasks.tabular import NB201Table, TabularTask


class SlowTask(TabularTask):
    def evaluate(self, actions):
        time.sleep(0.01)
        return super().evaluate(actions)


POOL_ID = ["nb201/cifar100", "nb201/ImageNet16-120"]


def tasks(table_path: str, slow: bool) -> list[TabularTask]:
    table = NB201Table.from_frame(pd.read_parquet(table_path))
    cls = SlowTask if slow else TabularTask
    return [cls(table, "cifar100"), cls(table, "ImageNet16-120")]


if __name__ == "__main__":
    pool = tasks(sys.argv[1], slow=True)
    searcher = make_searcher("catch-meta", pool[0].space, None, seed=5)
    meta_train(
        pool[0].space, searcher, scheduled(pool, 4, 5), 4, 12, pool=POOL_ID, workdir=sys.argv[2]
    )
