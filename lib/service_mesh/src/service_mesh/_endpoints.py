"""Checks that the endpoints a mesh object relies on are declared in the charm's metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    import ops


class MissingEndpointError(KeyError):
    """A relation endpoint the library needs is not declared in the charm's metadata.

    It subclasses :class:`KeyError` because upstream fails with a bare ``KeyError`` in the same
    situation, so code written for upstream keeps catching it; unlike that one, the message
    names the endpoint and what to declare.
    """

    def __init__(self, endpoint: str, purpose: str) -> None:
        super().__init__(endpoint)
        self.endpoint = endpoint
        self.purpose = purpose

    def __str__(self) -> str:
        return (
            f"relation endpoint {self.endpoint!r} ({self.purpose}) is not declared in the "
            "charm's metadata; add it to charmcraft.yaml or pass the name your charm uses"
        )


def require_endpoints(charm: ops.CharmBase, endpoints: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`MissingEndpointError` for the first ``(name, purpose)`` not in metadata.

    Checking up front turns a typo into one clear error at construction instead of a
    ``KeyError`` or ``AttributeError`` from deep inside ops when an observer is registered.
    """
    declared = charm.meta.relations
    for name, purpose in endpoints:
        if name not in declared:
            raise MissingEndpointError(name, purpose)
