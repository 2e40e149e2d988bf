# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""``tracing`` v2, requirer side: ask a tracing backend for receivers and read their URLs.

Wire format (charm-relation-interfaces ``interfaces/tracing/v2``), application databags only:

- requirer (us, leader only): ``receivers``: JSON list of protocol names, e.g.
  ``["otlp_grpc", "otlp_http"]``.
- provider: ``receivers``: JSON list of ``{"protocol": {"name": "otlp_http", "type": "http"},
  "url": "http://tempo:4318"}``; ``type`` is ``http`` or ``grpc``, and gRPC URLs carry no
  scheme (``tempo:4317``).

We implement the format here rather than depend on PyPI's ``charmlibs-interfaces-tracing``
1.0.0: its requirer is an ``ops.Object`` that writes from ``__init__`` and clears then rewrites
the databag on every call (a relation-set each hook even when nothing changed), and its reader
reports a malformed bag only as "not ready", with no reason a charm could show.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, cast

import ops

from coordinated_workers.telemetry import _databag
from service_mesh.databag import canonical_json, update_changed

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

logger = logging.getLogger(__name__)

RECEIVERS_KEY = "receivers"
"""The one key both sides write in their application databag."""

_PROTOCOL_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")


def receivers_from_bag(app_bag: Mapping[str, str]) -> dict[str, str] | None:
    """Protocol name -> URL from a provider's app databag; None if it published nothing yet.

    When a protocol appears twice the first entry wins, as upstream requirers do.

    Raises:
        DatabagError: ``receivers`` is malformed anywhere; the whole bag is then unusable,
            since a partial list could silently drop the protocol the charm needs.
    """
    receivers = _databag.load_json(app_bag, RECEIVERS_KEY)
    if receivers is None:
        return None
    if not isinstance(receivers, list):
        raise _databag.DatabagError(f"{RECEIVERS_KEY!r} is not a list")
    urls: dict[str, str] = {}
    for index, receiver in enumerate(cast("list[object]", receivers)):
        what = f"{RECEIVERS_KEY!r}[{index}]"
        protocol = _databag.get_field(receiver, "protocol", what)
        name = _databag.get_field(protocol, "name", f"{what} protocol")
        transport = _databag.get_field(protocol, "type", f"{what} protocol")
        url = _databag.get_field(receiver, "url", what)
        if not isinstance(name, str) or not _PROTOCOL_NAME.fullmatch(name):
            raise _databag.DatabagError(f"{what} has an invalid protocol name")
        if transport == "http":
            url = _databag.http_url(url, f"{what} url")
        elif transport == "grpc":
            url = _grpc_url(url, f"{what} url")
        else:
            raise _databag.DatabagError(f"{what} has a transport other than http or grpc")
        urls.setdefault(name, url)
    return dict(sorted(urls.items()))


class TracingRequirer:
    """Requests receivers on a ``tracing`` requirer endpoint and reads what the provider offers."""

    def __init__(self, charm: ops.CharmBase, endpoint: str, protocols: Iterable[str]) -> None:
        """Set up the requirer; nothing is read or written until a method is called.

        Args:
            charm: the charm owning `endpoint`.
            endpoint: e.g. ``charm-tracing`` or ``workload-tracing``.
            protocols: receiver protocols to request, e.g. ``["otlp_http"]``. None requested
                means the ``receivers`` key is removed, which a provider reads as "not ready".

        Raises:
            ValueError: a protocol name is not a plain lowercase identifier.
        """
        self._charm = charm
        self._endpoint = endpoint
        self._protocols = sorted(set(protocols))
        bad = [p for p in self._protocols if not _PROTOCOL_NAME.fullmatch(p)]
        if bad:
            raise ValueError(f"invalid tracing protocol names: {bad}")

    def request_protocols(self) -> bool:
        """Publish the requested protocols on every relation; leader only, only if changed.

        Returns:
            True if a databag was written. Non-leaders never write and return False.
        """
        if not self._charm.unit.is_leader():
            return False
        changed = False
        for relation in self._charm.model.relations[self._endpoint]:
            bag = relation.data[self._charm.app]
            if self._protocols:
                changed |= update_changed(bag, {RECEIVERS_KEY: canonical_json(self._protocols)})
            elif RECEIVERS_KEY in bag:
                del bag[RECEIVERS_KEY]
                changed = True
        return changed

    def receivers(self) -> _databag.Reading[dict[str, str]]:
        """Protocol name -> receiver URL offered by the provider(s).

        Every protocol the provider publishes is returned, requested or not; the caller picks.
        With several relations, the lowest relation id wins for a protocol both offer. A
        relation whose bag is malformed is skipped and reported in `Reading.problems`.
        """
        urls: dict[str, str] = {}
        problems: list[_databag.DatabagProblem] = []
        for relation in sorted(self._charm.model.relations[self._endpoint], key=lambda r: r.id):
            label = _databag.relation_label(relation)
            try:
                offered = receivers_from_bag(relation.data[relation.app])
            except (_databag.DatabagError, ops.ModelError) as e:
                problems.append(_databag.DatabagProblem(label, relation.app.name, str(e)))
                logger.warning("ignoring tracing receivers on %s: %s", label, e)
                continue
            for name, url in (offered or {}).items():
                urls.setdefault(name, url)
        return _databag.Reading(dict(sorted(urls.items())), tuple(problems))


def _grpc_url(value: object, what: str) -> str:
    # The schema says gRPC URLs have no scheme, but some providers include one; accept both.
    if isinstance(value, str) and "://" in value:
        return _databag.http_url(value, what)
    return _databag.host_port(value, what)
