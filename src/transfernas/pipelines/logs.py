"""The filter ``hooks.QuietLogs`` puts on the log handlers: a run prints what a user acts on, each
thing once. (Kedro's logging configuration allows neither ``()`` filter factories nor handler
classes from the project, so a hook attaches it.)"""

from __future__ import annotations

import logging
import sys

from transfernas.errors import user_error

# (logger, start of message) that every run prints and no one acts on
NOISE = (
    ("kedro_mlflow.framework.hooks.mlflow_hook", "Registering new custom resolver"),
    ("kedro.runner.sequential_runner", "Using synchronous mode"),  # 8 lines at 80 columns
)


def shown(record: logging.LogRecord) -> bool:
    """False for the lines of ``NOISE``, and for Kedro's "Node … failed" record when the error
    is the project's own (a bad value or file): the ``kedro run`` wrapper prints that message
    once, at the end. Logging runs inside Kedro's ``except`` block: ``sys.exc_info`` is the
    error."""
    if any(record.name == name and str(record.msg).startswith(s) for name, s in NOISE):
        return False
    if record.name == "kedro.pipeline.node" and record.levelno >= logging.ERROR:
        error = sys.exc_info()[1]
        return error is None or user_error(error) is None
    return True
