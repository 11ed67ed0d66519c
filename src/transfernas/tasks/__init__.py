"""Tasks turn an architecture into a reward (table lookup, training, detection, ...)."""

from transfernas.tasks.base import Evaluation, Task
from transfernas.tasks.tabular import DATASETS, NB201Table, TabularTask

__all__ = ["DATASETS", "Evaluation", "NB201Table", "TabularTask", "Task"]
