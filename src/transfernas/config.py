"""Parameter validation: turn pydantic errors into one message that names the offending key.

Kedro hands nodes plain dicts from ``conf/base/parameters*.yml`` (plus ``--params``
overrides); every node validates its block with a model from here so that a typo fails fast
with ``nb201_benchmark.methods[1]: ... allowed: random, rea, reinforce`` instead of a
traceback deep inside a search.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, ValidationError, create_model

from transfernas.errors import UserError
from transfernas.searchers import SEARCHERS, SearcherConfig, check_searcher_name

M = TypeVar("M", bound=BaseModel)


class ParameterError(UserError, ValueError):
    """Invalid parameters; the message names each bad key and what is allowed."""


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part) or not str(part).isprintable() or any(c.isspace() for c in str(part)):
            out += f"[{str(part)!r}]"  # a key no one could read in the message otherwise
        else:
            out += f".{part}" if out else str(part)
    return out


def _walk(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[tuple, type | None]:
    """The location as the user wrote it (tags of tagged unions dropped) and the model there."""
    kept: list[int | str] = []
    current: type | None = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        kept.append(part)
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        members = [m for m in get_args(ann) if isinstance(m, type) and issubclass(m, BaseModel)]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            current = ann
        elif members and parts and isinstance(parts[0], str):  # tagged union: loc has the tag
            tag = parts.pop(0)
            current = next((m for m in members if m.model_fields["name"].default == tag), None)
        else:
            current = None
    return tuple(kept), current


def _quoted(value: str, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters: one line however long the value typed."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def validate_params(model: type[M], params: Mapping[str, Any] | None, key: str) -> M:
    """Validate ``params`` (the block under ``key`` in parameters.yml) against ``model``."""
    try:
        return model.model_validate(dict(params or {}))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            loc, _ = _walk(model, err["loc"])
            for echoed in (err.get("input"), err.get("ctx", {}).get("tag")):
                if isinstance(echoed, str):  # a message that repeats a long value: cut there too
                    msg = msg.replace(repr(echoed), _quoted(echoed))
            if err["type"] == "extra_forbidden":
                _, parent = _walk(model, err["loc"][:-1])
                allowed = ", ".join(parent.model_fields if parent is not None else [])
                msg = f"unknown key; allowed keys: {allowed}"
            got = repr(err.get("input"))
            got = got if len(got) <= 80 else got[:76] + " ..."  # one screen, however long
            lines.append(f"{_path(key, loc)}: {msg} (got {got})")
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(lines)) from None


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
