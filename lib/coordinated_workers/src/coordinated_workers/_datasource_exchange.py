# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The ``grafana_datasource_exchange`` interface (v0): Grafana datasources between clusters.

Both sides of the interface write the same thing in their application bag: ``datasources``,
a JSON list of objects ``{"type", "uid", "grafana_uid"}`` (the datasource's Grafana type, the
UID Grafana gave it, and the UID of that Grafana). A Tempo, Loki or Mimir cluster publishes
the datasources Grafana created for it, and reads the other clusters' to correlate with them
(traces to logs, and so on). The bag is byte for byte what ``cosl``'s ``DatasourceExchange``
writes: entries sorted by ``uid`` (stable), keys in that order, compact JSON, non-ASCII kept
as is, so a charm moving from it rewrites nothing.

This module is here rather than ``cosl``'s class because that class drops a malformed remote
bag without saying which relation sent it, and rewrites its bag on every call; here a bad bag
becomes a problem naming the relation, the bag is written only when it changed, and the last
good datasources of each relation are kept while its bag is unusable. Which bags are accepted
is the same: the ``datasources`` key must be a JSON list of such objects, every field a string
(extra fields ignored), or the whole bag is refused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import TYPE_CHECKING, cast

import ops
import pydantic

from service_mesh import safe_text
from service_mesh.databag import update_changed

from .telemetry._databag import DatabagProblem, Reading, relation_label

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "DatasourceExchange",
    "DatasourceExchangeError",
    "GrafanaDatasource",
    "datasources_bag",
    "parse_datasources",
]

logger = logging.getLogger(__name__)

INTERFACE = "grafana_datasource_exchange"
KEY = "datasources"


@dataclasses.dataclass(frozen=True)
class GrafanaDatasource:
    """One Grafana datasource, as the interface names it."""

    type: str
    """Grafana's datasource type: ``tempo``, ``loki``, ``prometheus``, ..."""
    uid: str
    """The datasource's UID, as Grafana assigned it."""
    grafana_uid: str
    """The UID of the Grafana that holds the datasource."""


class DatasourceExchangeError(ValueError):
    """A ``grafana_datasource_exchange`` bag that cannot be used, and why."""


class _Entry(pydantic.BaseModel):
    """One entry as the interface schema has it: three strings, other fields ignored."""

    model_config = pydantic.ConfigDict(extra="ignore")
    type: str
    uid: str
    grafana_uid: str


_ENTRIES = pydantic.TypeAdapter(pydantic.Json[list[_Entry]])


def datasources_bag(datasources: Iterable[GrafanaDatasource]) -> dict[str, str]:
    """The application bag that publishes ``datasources`` (sorted by UID, as cosl does)."""
    ordered = sorted(datasources, key=lambda ds: ds.uid)
    entries = [{"type": d.type, "uid": d.uid, "grafana_uid": d.grafana_uid} for d in ordered]
    return {KEY: json.dumps(entries, separators=(",", ":"), ensure_ascii=False)}


def parse_datasources(bag: Mapping[str, str]) -> tuple[GrafanaDatasource, ...]:
    """The datasources a remote application bag publishes, sorted by UID.

    Raises:
        DatasourceExchangeError: the bag has no ``datasources`` key, or its value is not a
            JSON list of objects with string ``type``, ``uid`` and ``grafana_uid``.
    """
    raw = bag.get(KEY)
    if raw is None:
        raise DatasourceExchangeError(f"no {KEY!r} key")
    try:
        entries = _ENTRIES.validate_python(raw)
    except (pydantic.ValidationError, RecursionError) as e:
        raise DatasourceExchangeError(f"{KEY!r} is not a list of datasources: {_first(e)}") from e
    found = (GrafanaDatasource(e.type, e.uid, e.grafana_uid) for e in entries)
    return tuple(sorted(found, key=lambda ds: ds.uid))


def _first(error: Exception) -> str:
    if isinstance(error, pydantic.ValidationError) and error.errors():
        detail = error.errors()[0]
        where = ".".join(str(part) for part in detail["loc"])
        return f"{where}: {detail['msg']}" if where else str(detail["msg"])
    return "nested too deeply"


class DatasourceExchange(ops.Object):
    """Both endpoints of the interface: publish our datasources, read the remote ones.

    The interface is symmetric: ``send`` (a provides endpoint) and ``receive`` (a requires
    endpoint) carry the same bag, and relations of both are read and written alike. An
    endpoint the charm does not declare is ignored.
    """

    _last_good = ops.StoredState()

    def __init__(self, charm: ops.CharmBase, send: str | None, receive: str | None) -> None:
        super().__init__(charm, "datasource-exchange")
        self._charm = charm
        declared = charm.meta.relations
        self._endpoints = tuple(e for e in (send, receive) if e is not None and e in declared)
        self._reading: Reading[tuple[GrafanaDatasource, ...]] | None = None
        self._per_relation: list[tuple[ops.Relation, tuple[GrafanaDatasource, ...]]] = []

    def relations(self) -> list[ops.Relation]:
        """Our relations on both endpoints whose remote application Juju knows already."""
        found: list[ops.Relation] = []
        for endpoint in self._endpoints:
            found.extend(r for r in self._charm.model.relations[endpoint] if _app(r) is not None)
        return found

    def publish(self, datasources: Iterable[GrafanaDatasource]) -> bool:
        """Write our datasources on every relation where they differ (leader only).

        Returns:
            Whether any bag was written.
        """
        relations = self.relations()
        if not relations or not self._charm.unit.is_leader():
            return False
        values = datasources_bag(datasources)
        changed = [self._write(relation, values) for relation in relations]  # all, not the first
        return any(changed)

    def _write(self, relation: ops.Relation, values: Mapping[str, str]) -> bool:
        try:
            return update_changed(relation.data[self._charm.app], values)
        except ops.ModelError as e:
            logger.warning("cannot publish datasources on %s: %s", relation_label(relation), e)
            return False

    def received(self) -> Reading[tuple[GrafanaDatasource, ...]]:
        """Every datasource the remote applications publish, sorted by UID (read once a hook).

        A relation whose bag is unusable contributes the datasources it last published in a
        usable bag (none if it never did), and is reported in ``problems`` and logged.
        """
        if self._reading is None:
            self._reading = self._read()
        return self._reading

    def correlated(
        self, datasource_type: str, grafana_uids: Iterable[str], apps: Iterable[str] | None = None
    ) -> GrafanaDatasource | None:
        """A received datasource of ``datasource_type`` in one of the given Grafanas, or None.

        Args:
            datasource_type: the type to correlate with, e.g. ``loki`` for traces to logs.
            grafana_uids: the Grafanas that hold our own datasource: a datasource elsewhere
                cannot be linked to ours.
            apps: only datasources published by these remote applications (e.g. those this
                charm also sends its logs to); None: any.

        Returns:
            The first match, relations taken in the order Juju created them and each one's
            datasources by UID (equivalent datasources are interchangeable), or None.
        """
        wanted = set(grafana_uids)
        allowed = None if apps is None else set(apps)
        for relation, datasources in self._by_relation():
            if allowed is not None and relation.app.name not in allowed:
                continue
            for ds in datasources:
                if ds.type == datasource_type and ds.grafana_uid in wanted:
                    return ds
        return None

    def _by_relation(self) -> list[tuple[ops.Relation, tuple[GrafanaDatasource, ...]]]:
        self.received()
        return self._per_relation

    def _read(self) -> Reading[tuple[GrafanaDatasource, ...]]:
        stored = self._stored_bags()
        kept: dict[str, str] = {}
        problems: list[DatabagProblem] = []
        self._per_relation = []
        for relation in sorted(self.relations(), key=lambda r: r.id):
            key = str(relation.id)
            app = relation.app
            try:
                bag = relation.data[app]
                found = parse_datasources(bag) if bag else ()
                kept[key] = _stored_form(found)
            except (DatasourceExchangeError, ops.ModelError) as e:
                problem = DatabagProblem(relation_label(relation), app.name, str(e))
                logger.warning("ignoring datasources: %s", safe_text(str(problem), 500))
                problems.append(problem)
                found = _decode_kept(stored.get(key))
                if key in stored:
                    kept[key] = stored[key]
            self._per_relation.append((relation, found))
        if kept != stored:  # written on a change only
            self._last_good.bags = kept
        merged = (ds for _, found in self._per_relation for ds in found)
        return Reading(tuple(sorted(merged, key=lambda ds: ds.uid)), tuple(problems))

    def _stored_bags(self) -> dict[str, str]:
        """Relation id -> its last usable datasources, as `_stored_form` (none stored yet: {}).

        Read without ``set_default``, which would write the record in every charm's first hook.
        """
        try:
            bags = cast("Mapping[str, str]", self._last_good.bags)
        except AttributeError:
            return {}
        return dict(bags)


def _app(relation: ops.Relation) -> ops.Application | None:
    """The remote application; None before Juju knows it (ops' type says otherwise)."""
    return cast("ops.Application | None", relation.app)


def _stored_form(datasources: Iterable[GrafanaDatasource]) -> str:
    """Our own record of a relation's datasources: ASCII JSON, whatever text they hold."""
    return json.dumps([[d.type, d.uid, d.grafana_uid] for d in datasources])


def _decode_kept(raw: str | None) -> tuple[GrafanaDatasource, ...]:
    """What `_stored_form` recorded; nothing if there is no record or it is not ours."""
    if raw is None:
        return ()
    try:
        return tuple(GrafanaDatasource(*map(str, entry)) for entry in json.loads(raw))
    except (ValueError, TypeError):
        return ()
