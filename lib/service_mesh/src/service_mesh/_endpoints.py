# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Checks that the endpoints a mesh object relies on are declared in the charm's metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import MissingEndpointError

if TYPE_CHECKING:
    from collections.abc import Iterable

    import ops

__all__ = ["MissingEndpointError", "require_endpoints"]


def require_endpoints(charm: ops.CharmBase, endpoints: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`MissingEndpointError` for the first ``(name, purpose)`` not in metadata.

    Checking up front turns a typo into one clear error at construction instead of a
    ``KeyError`` or ``AttributeError`` from deep inside ops when an observer is registered.
    """
    declared = charm.meta.relations
    for name, purpose in endpoints:
        if name not in declared:
            raise MissingEndpointError(name, purpose)
