"""Project CLI: Kedro's ``run`` with short errors, and the warning filters set before Kedro starts.

``kedro run`` ending in a :class:`~transfernas.errors.UserError` (a bad parameter, a data folder
or file off its layout, a resume mismatch) prints the project's message and exits 2; with
``--verbose`` or ``TRANSFERNAS_TRACEBACK=1`` it raises as Kedro does. Any other exception keeps
its traceback. Kedro loads this module's ``cli`` group over its own commands.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from transfernas.errors import user_error

TRACEBACK_ENV = "TRANSFERNAS_TRACEBACK"


def quiet_warnings() -> None:
    """Drop the third-party warnings a run cannot avoid; each comes from code outside the project.

    A ``kedro.init`` entry point (it runs before Kedro imports its plugins) and again at the
    start of ``run``, after Kedro has put its own filters first.
    """
    # `kedro run --pipeline <stage>` is this project's documented command; Kedro 1.7 deprecates
    # the option in favour of `--pipelines`, which does the same for one name.
    warnings.filterwarnings("ignore", message=r"Option '--pipeline' is deprecated")
    # Kedro registers its own resolvers (and ours, from settings.CONFIG_LOADER_ARGS), and
    # kedro-mlflow its `km.random_name`, through omegaconf's deprecated register_new_resolver.
    warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")
    # mmseg's own decode heads build their losses through its deprecated build_loss.
    warnings.filterwarnings("ignore", message=r"``build_loss`` would be deprecated")
    # mlflow configures its own logger when imported; its INFO lines (database set-up) go.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # kedro-mlflow's KedroPipelineModel.predict has no type hints, and mlflow warns when the
    # class is defined from inside its own catch_warnings, which no filter reaches: define it
    # here once with the warning recorded and dropped.
    with warnings.catch_warnings(record=True):
        import kedro_mlflow.mlflow.kedro_pipeline_model  # noqa: F401


def _run(verbose: bool, **kwargs: Any) -> Any:
    quiet_warnings()
    try:
        return kedro_run.callback(**kwargs)
    except Exception as exc:
        error = user_error(exc)
        if error is None or verbose or os.environ.get(TRACEBACK_ENV):
            raise
        click.secho(f"Error: {error}", fg="red", err=True)
        click.echo(f"(a traceback: kedro run --verbose … or {TRACEBACK_ENV}=1)", err=True)
        raise SystemExit(2) from None


@click.group(name="transfernas")
def cli() -> None:
    """transfernas project commands."""


cli.add_command(
    click.Command(
        name="run",
        callback=_run,
        params=[
            *kedro_run.params,
            click.Option(
                ["--verbose", "-v"],
                is_flag=True,
                help=f"Show the traceback of a parameter or data error (or set {TRACEBACK_ENV}=1).",
            ),
        ],
        help=kedro_run.help,
        short_help=kedro_run.short_help,
    )
)
