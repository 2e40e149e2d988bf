# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The ``catalogue`` interface (requirer side): an entry for the cluster's UI or API.

Wire format, as the ``catalogue`` library (v1.3) writes it in the requirer's application bag:
``name``, ``url``, ``icon``, ``description`` and ``api_docs`` as plain strings, and
``api_endpoints`` as a JSON object (title -> URL, in the charm's order) or ``null``. Relation
values cannot be empty, so an empty field is absent from the bag. Only the leader writes, and
only the keys whose value changed, so a steady hook sets nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING

from service_mesh.databag import update_changed

from .telemetry import _databag

if TYPE_CHECKING:
    from collections.abc import Mapping

    import ops

__all__ = ["CatalogueItem", "CatalogueRequirer", "catalogue_bag"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CatalogueItem:
    """What the catalogue shows for this cluster."""

    name: str
    icon: str
    """A Material Design icon name, e.g. ``transit-connection-variant``."""
    url: str = ""
    """Where the UI is; empty when the cluster has none (an API only)."""
    description: str = ""
    api_docs: str = ""
    api_endpoints: Mapping[str, str] | None = None
    """Title -> URL of the main API calls, shown in this order."""


def catalogue_bag(item: CatalogueItem) -> dict[str, str]:
    """The application bag for ``item``; an empty value means "delete the key"."""
    endpoints = None if item.api_endpoints is None else dict(item.api_endpoints)
    return {
        "name": item.name,
        "url": item.url,
        "icon": item.icon,
        "description": item.description,
        "api_docs": item.api_docs,
        "api_endpoints": json.dumps(endpoints),
    }


class CatalogueRequirer:
    """Publishes a :class:`CatalogueItem` on every relation of a ``catalogue`` endpoint."""

    def __init__(self, charm: ops.CharmBase, endpoint: str = "catalogue") -> None:
        self._charm = charm
        self._endpoint = endpoint

    def publish(self, item: CatalogueItem) -> bool:
        """Write ``item`` where it differs (leader only); whether anything was written."""
        if not self._charm.unit.is_leader():
            return False
        values = catalogue_bag(item)
        changed = [self._write(r, values) for r in self._charm.model.relations[self._endpoint]]
        return any(changed)

    def _write(self, relation: ops.Relation, values: Mapping[str, str]) -> bool:
        import ops

        try:
            return update_changed(relation.data[self._charm.app], values)
        except ops.ModelError as e:
            logger.warning("cannot publish to %s: %s", _databag.relation_label(relation), e)
            return False
