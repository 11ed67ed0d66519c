"""Search spaces: decisions, masks, encode/decode — and the one registry every stage reads.

``SPACES`` maps a space's name to its parameter model (a :class:`SpaceParams`); a stage that
needs a space validates its configuration block with :func:`space_params` and calls
``.build()``. Trained tasks take the spaces that build image classifiers
(:data:`ClassifierSpaceParams`); the NAS-FPN neck space is built inside a detector.
"""

from typing import Annotated, Any, Union

from pydantic import Field

from transfernas.spaces.base import (
    Actions,
    ActionSpace,
    SearchSpace,
    SpaceParams,
    decision_kinds,
    is_valid,
    mutate_actions,
    sample_actions,
)
from transfernas.spaces.nasfpn import NASFPNSpace, NASFPNSpaceParams
from transfernas.spaces.nasnet import NASNetSpace, NASNetSpaceParams
from transfernas.spaces.nb201 import NB201Space, NB201SpaceParams
from transfernas.spaces.resblock import ResBlockSpace, ResBlockSpaceParams

SPACES: dict[str, type[SpaceParams]] = {
    cls.model_fields["name"].default: cls
    for cls in (ResBlockSpaceParams, NB201SpaceParams, NASNetSpaceParams, NASFPNSpaceParams)
}
CLASSIFIER_SPACES = {name: cls for name, cls in SPACES.items() if cls.classifier}
ClassifierSpaceParams = Annotated[
    Union[tuple(CLASSIFIER_SPACES.values())],  # noqa: UP007  (a union built from the registry)
    Field(discriminator="name"),
]


def space_params(values: dict[str, Any], registry: dict[str, type[SpaceParams]] = SPACES):
    """Validate a space's configuration block (``{"name": ..., **params}``) by the registry."""
    name = values.get("name")
    if name not in registry:
        raise ValueError(f"unknown search space {name!r}; allowed: {', '.join(registry)}")
    return registry[name].model_validate(values)


__all__ = [
    "CLASSIFIER_SPACES",
    "SPACES",
    "ActionSpace",
    "Actions",
    "ClassifierSpaceParams",
    "NASFPNSpace",
    "NASNetSpace",
    "NB201Space",
    "ResBlockSpace",
    "SearchSpace",
    "SpaceParams",
    "decision_kinds",
    "is_valid",
    "mutate_actions",
    "sample_actions",
    "space_params",
]
