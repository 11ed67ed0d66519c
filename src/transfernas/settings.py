"""Kedro project settings (glue only)."""

import os

from kedro.config import OmegaConfigLoader

from transfernas.hooks import QuietLogs, RunTracking, ValidateFirst


def _env_or(name: str, default: str) -> str:
    """``${env_or:VAR,default}`` in conf/: an environment variable with a fallback."""
    return os.environ.get(name, default)


CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"env_or": _env_or},
    # an environment (e.g. conf/paper) overrides single nested keys, not whole blocks
    "merge_strategy": {"parameters": "soft"},
}

HOOKS = (QuietLogs(), ValidateFirst(), RunTracking())
