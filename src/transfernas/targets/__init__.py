"""Target kinds: what ``adapt.task`` / ``search.task`` name. Each builds its task from the stage
inputs, says what its durable run depends on and describes its best result; a new kind is one
module with a :class:`TargetKind`, added to ``TARGETS`` below (next to ``SPACES``,
``SEARCHERS`` and the downstream ``KINDS``)."""

from transfernas.targets.base import TargetKind
from transfernas.targets.downstream import DOWNSTREAM_TARGETS
from transfernas.targets.nb201 import NB201Target
from transfernas.targets.subdataset import SubdatasetTarget, ZeroCostTarget

TARGETS: dict[str, TargetKind] = {
    kind.name: kind
    for kind in (SubdatasetTarget(), ZeroCostTarget(), NB201Target(), *DOWNSTREAM_TARGETS)
}

__all__ = ["TARGETS", "TargetKind"]
