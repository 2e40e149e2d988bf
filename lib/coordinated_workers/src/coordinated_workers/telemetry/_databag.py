# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Tolerant decoding of databags written by remote apps, and change-only writes to our own.

Remote databags may be missing, malformed or hostile. Readers decode one value at a time with
the helpers here, which raise `DatabagError` with a short human reason; the caller skips that
relation (or unit) and records a `DatabagProblem` so the charm can report it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import urllib.parse
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from .._status import CoordinatedWorkersError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import ops

_T = TypeVar("_T")
_logger = logging.getLogger(__name__)

MAX_URL_LENGTH = 2048
"""Longer values are refused: no telemetry URL needs more, and we copy URLs into other bags."""

# RFC 3986 characters only: no whitespace, quotes, braces or control characters.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


class DatabagError(CoordinatedWorkersError, ValueError):
    """A databag value written by a remote app cannot be used."""


@dataclasses.dataclass(frozen=True)
class DatabagProblem:
    """Why some remote data was ignored: enough for a log line or a status message."""

    relation: str
    """``<endpoint>:<relation id>``."""
    source: str
    """The unit or application whose databag was ignored."""
    reason: str

    def __str__(self) -> str:
        return f"{self.relation} ({self.source}): {self.reason}"


@dataclasses.dataclass(frozen=True)
class Reading(Generic[_T]):
    """What a requirer read from its relations, plus what it had to ignore and why."""

    value: _T
    problems: tuple[DatabagProblem, ...] = ()


def relation_label(relation: ops.Relation) -> str:
    """``<endpoint>:<relation id>``, as Juju prints it."""
    return f"{relation.name}:{relation.id}"


def unit_urls(charm: ops.CharmBase, endpoint: str, key: str, what: str) -> Reading[dict[str, str]]:
    """Every remote unit's ``{"url": ...}`` under `key`, as unit name -> URL, sorted.

    Units that have not published yet are left out; a unit whose value is malformed is left out
    and reported in `Reading.problems` (and logged), without affecting the others.

    Args:
        charm: the charm owning `endpoint`.
        endpoint: a requirer endpoint whose provider units each publish one URL.
        key: the unit databag key (``endpoint`` for Loki, ``remote_write`` for remote write).
        what: a few words for the log line, e.g. ``"Loki endpoint"``.
    """
    import ops

    urls: dict[str, str] = {}
    problems: list[DatabagProblem] = []
    for relation in charm.model.relations[endpoint]:
        label = relation_label(relation)
        for unit in sorted(relation.units, key=lambda u: u.name):
            try:
                url = url_field(relation.data[unit], key)
            except (DatabagError, ops.ModelError) as e:
                problems.append(DatabagProblem(label, unit.name, str(e)))
                _logger.warning("ignoring %s of %s on %s: %s", what, unit.name, label, e)
                continue
            if url is not None:
                urls[unit.name] = url
    return Reading(dict(sorted(urls.items())), tuple(problems))


def url_field(bag: Mapping[str, str], key: str) -> str | None:
    """The http(s) URL in ``{"url": ...}`` under `key`, or None if `key` is absent.

    Raises:
        DatabagError: the value is malformed.
    """
    value = load_json(bag, key)
    if value is None:
        return None
    return http_url(get_field(value, "url", key), f"{key!r} url")


def load_json(bag: Mapping[str, str], key: str) -> object | None:
    """Decode the JSON value of `key`, or return None when the key is absent.

    Raises:
        DatabagError: the value is not JSON (including nesting too deep to decode).
    """
    raw = bag.get(key)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise DatabagError(f"{key!r} is not valid JSON") from e


def get_field(value: object, field: str, what: str) -> object:
    """Return ``value[field]`` when `value` is a JSON object that has it.

    Raises:
        DatabagError: `value` is not an object, or has no `field`.
    """
    if not isinstance(value, dict) or field not in value:
        raise DatabagError(f"{what} is not an object with {field!r}")
    return cast("dict[str, object]", value)[field]


def http_url(value: object, what: str) -> str:
    """Check that `value` is an absolute http(s) URL with a host, and return it.

    Raises:
        DatabagError: with `what` naming the offending value.
    """
    url = _url_text(value, what)
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError as e:
        raise DatabagError(f"{what} is not a valid URL") from e
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DatabagError(f"{what} is not an http(s) URL with a host")
    return url


def host_port(value: object, what: str) -> str:
    """Check that `value` is a scheme-less ``host:port`` (how gRPC receivers are published).

    Raises:
        DatabagError: with `what` naming the offending value.
    """
    text = _url_text(value, what)
    try:
        parts = urllib.parse.urlsplit(f"//{text}")
        port = parts.port
    except ValueError as e:
        raise DatabagError(f"{what} is not a valid host:port") from e
    if not parts.hostname or port is None or parts.path or parts.query or parts.fragment:
        raise DatabagError(f"{what} is not a host:port")
    return text


def _url_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise DatabagError(f"{what} is not a string")
    if len(value) > MAX_URL_LENGTH:
        raise DatabagError(f"{what} is longer than {MAX_URL_LENGTH} characters")
    if not _URL_CHARACTERS.fullmatch(value):
        raise DatabagError(f"{what} contains characters a URL cannot contain")
    return value
