"""Capacity targets shared by the scaling actions (ECS, EKS, NKS): one rule, written once.

Every scaling action takes either ``size`` (``active`` or ``warm``, sizes the config
or the cloud already knows) or an explicit ``count``, never both, so a playbook says
what it means. ``warm`` for EKS and NKS is the group's own minimum: the schema has no
warm size for them, and the minimum is the floor the operators chose for the group.

Not an action module: it registers nothing, so it is not listed in the catalogue's
``_MODULES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Self, TypeVar, get_args

from pydantic import BaseModel, Field, model_validator

from drorch.engine.catalogue import Params
from drorch.errors import InvalidInput
from drorch.providers.estate import Estate

C = TypeVar("C", bound=BaseModel)


class ScaleParams(Params):
    site: str
    size: Literal["active", "warm"] | None = None
    count: int | None = Field(default=None, ge=0)
    timeout: float = Field(default=300.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _size_or_count(self) -> Self:
        if (self.size is None) == (self.count is None):
            raise ValueError("give exactly one of 'size' (active or warm) or 'count' (a number)")
        return self


def target(p: ScaleParams, active: int | None, warm: int | None, what: str) -> int:
    """The size ``p`` asks for; InvalidInput when it names a size nothing defines for ``what``."""
    if p.count is not None:
        return p.count
    value = active if p.size == "active" else warm
    if value is None:
        raise InvalidInput(f"{what}: no {p.size} size is configured; give 'count' instead")
    return value


def compute_of(estate: Estate, site: str, kind: type[C]) -> C:
    """The site's compute config when it is of ``kind``; InvalidInput naming what the site runs otherwise."""
    compute = estate.config.site(site).compute
    if not isinstance(compute, kind):
        runs = compute.kind if compute is not None else "no compute"
        wanted = get_args(kind.model_fields["kind"].annotation)[0]
        raise InvalidInput(f"sites.{site}.compute: {site} runs {runs}, not {wanted}")
    return compute


@dataclass(frozen=True)
class Resize:
    """One group's size now and the size the action wants, for plans and results."""

    label: str
    current: int
    target: int

    def describe(self) -> str:
        return f"{self.label}: desired {self.current} -> {self.target}"


def changes(resizes: list[Resize]) -> list[str]:
    """Plan lines for the groups that are not yet at their target (empty: nothing to do)."""
    return [r.describe() for r in resizes if r.current != r.target]
