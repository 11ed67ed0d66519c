"""Parameter validation: turn pydantic errors into one message that names the offending key.

Kedro hands nodes plain dicts from ``conf/base/parameters*.yml`` (plus ``--params``
overrides); every node validates its block with a model from here so that a typo fails fast
with ``nb201_benchmark.methods[1]: ... allowed: random, rea, reinforce`` instead of a
traceback deep inside a search.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError, create_model

from transfernas.searchers import SEARCHERS, SearcherConfig, check_searcher_name

M = TypeVar("M", bound=BaseModel)


class ParameterError(ValueError):
    """Invalid parameters; the message names each bad key and what is allowed."""


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_params(model: type[M], params: Mapping[str, Any] | None, key: str) -> M:
    """Validate ``params`` (the block under ``key`` in parameters.yml) against ``model``."""
    try:
        return model.model_validate(dict(params or {}))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(_allowed_keys(model, err["loc"][:-1]))
                msg = f"unknown key; allowed keys: {allowed}"
            lines.append(f"{_path(key, err['loc'])}: {msg} (got {err.get('input')!r})")
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(lines)) from None


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the (nested) model at ``loc``, for 'unknown key' errors."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _searcher_settings_model() -> type[BaseModel]:
    """One optional block per searcher config key, e.g. ``searchers.rea.population_size``."""
    fields: dict[str, Any] = {
        cls.config_key: (cls.Config, cls.Config()) for cls in SEARCHERS.values()
    }
    return create_model("SearcherSettings", __base__=SearcherConfig, **fields)


SearcherSettings = _searcher_settings_model()
# a parameter naming a registered searcher; the error lists the allowed names
SearcherName = Annotated[str, AfterValidator(check_searcher_name)]


def validate_searchers(params: Mapping[str, Any] | None) -> BaseModel:
    """The top-level ``searchers`` block (conf/base/parameters_searchers.yml)."""
    return validate_params(SearcherSettings, params, "searchers")


def searcher_config(settings: BaseModel, name: str) -> SearcherConfig:
    """Hyper-parameters of searcher ``name`` (variants share their method's block)."""
    check_searcher_name(name)
    return getattr(settings, SEARCHERS[name].config_key)
