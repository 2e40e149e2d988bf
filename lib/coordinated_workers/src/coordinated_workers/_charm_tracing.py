# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Where this charm's own traces go: the one destination of ops' tracing, set from a URL.

With the ``ops[tracing]`` extra installed, ops records a span for every hook, buffers the spans
on disk and sends them to a single destination, an OTLP/HTTP traces URL. Both the coordinator
and the worker set that destination themselves with ``ops.tracing.set_destination`` instead of
instantiating ``ops.tracing.Tracing``:

- the coordinator already requests ``otlp_http`` on its ``charm-tracing`` endpoint through
  :class:`~coordinated_workers.telemetry.tracing.TracingRequirer` (which reports malformed
  provider data); ``Tracing`` would add a second requirer writing the same databag key, so
  there is exactly one writer;
- a worker has no tracing relation at all: its URL is the coordinator's proxy, read from the
  ``cluster`` relation.

Without the extra, ``ops.tracing`` is None and setting the destination does nothing: the charm
then emits no traces, and needs no opentelemetry packages.
"""

from __future__ import annotations

import urllib.parse

import ops

from service_mesh import safe_text

OTLP_HTTP = "otlp_http"
"""The receiver protocol charm traces are sent with."""

TRACES_PATH = "v1/traces"
"""Where an OTLP/HTTP receiver takes traces, relative to its base URL."""


def traces_url(receiver: str) -> str:
    """The OTLP/HTTP traces URL of a receiver: its base URL and ``v1/traces``, one slash apart.

    The coordinator's proxy URL ends with a slash (``.../proxy/charm-tracing/otlp_http/``) and
    a Tempo receiver's does not (``http://tempo:4318``); both must give one ``/v1/traces``.

    Raises:
        ValueError: `receiver` is not an http or https URL with a host (ops can only send
            traces over HTTP).
    """
    parts = urllib.parse.urlsplit(receiver)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = safe_text(receiver, 80)
        raise ValueError(f"charm tracing receiver {shown!r} is not an http(s) URL")
    path = f"{parts.path.rstrip('/')}/{TRACES_PATH}"
    return urllib.parse.urlunsplit(parts._replace(path=path))


def set_destination(receiver: str | None, ca: str | None = None) -> None:
    """Send this charm's traces to the OTLP/HTTP receiver at base URL `receiver`.

    ops stores the destination and only rewrites it when it differs, so calling this on every
    hook costs a read of the trace buffer, not a write. Without ``ops[tracing]`` nothing is
    sent, but a bad `receiver` is still refused, so a charm's status does not depend on
    whether an optional extra is installed.

    Args:
        receiver: the receiver's base URL; None stops sending (ops keeps buffering spans, up
            to its size limit, and sends them once a destination is set again).
        ca: PEM bundle to verify an https receiver with; None uses the system's CAs.

    Raises:
        ValueError: `receiver` is not an http(s) URL. The destination is cleared first, so
            traces are never sent to the previous, now stale, receiver.
    """
    try:
        url = None if receiver is None else traces_url(receiver)
    except ValueError:
        _set(None, None)
        raise
    _set(url, None if url is None else ca)


def _set(url: str | None, ca: str | None) -> None:
    tracing = ops.tracing
    if tracing is not None:
        tracing.set_destination(url=url, ca=ca)
