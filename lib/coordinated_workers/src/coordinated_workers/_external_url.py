# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The coordinator's external URL: where clients outside the model reach it (an ingress).

Upstream passes this URL to its metrics endpoint provider, which publishes the URL's host and
path as the unit's scrape address (``prometheus_scrape_unit_address`` and
``prometheus_scrape_unit_path``) instead of the pod's address; charms also put it in their
catalogue entry. It is a base URL: scheme ``http`` or ``https``, a host, an optional port and
path, nothing else (no user, query or fragment), and a trailing ``/`` is dropped so that the
path joins ``/metrics`` cleanly.
"""

from __future__ import annotations

import re
import urllib.parse

from ._status import CoordinatedWorkersError

__all__ = ["ExternalUrlError", "scrape_address", "validated_external_url"]

MAX_LENGTH = 2048

# RFC 3986 characters of a URL without query or fragment: no whitespace, quotes or controls.
_ALLOWED = re.compile(r"[A-Za-z0-9\-._~:/\[\]@!$&'()*+,;=%]+")


class ExternalUrlError(CoordinatedWorkersError, ValueError):
    """An external URL that is not an http(s) base URL, and why."""


def validated_external_url(url: object) -> str:
    """``url`` as the coordinator publishes it, without a trailing ``/``.

    Raises:
        ExternalUrlError: not a string, too long, characters a URL cannot hold, a scheme other
            than http(s), no host, a bad port, or user info, a query or a fragment.
    """
    if not isinstance(url, str):
        raise ExternalUrlError(f"not a string: {type(url).__name__}")
    if len(url) > MAX_LENGTH:
        raise ExternalUrlError(f"longer than {MAX_LENGTH} characters")
    if not _ALLOWED.fullmatch(url):
        raise ExternalUrlError("has characters a URL cannot hold (or a query or fragment)")
    try:
        # urllib raises a plain ValueError for a bracketed host that is not IPv6 ("http://[").
        parsed = urllib.parse.urlsplit(url)
        hostname = parsed.hostname
    except ValueError as e:
        raise ExternalUrlError(f"bad host: {e}") from e
    if parsed.scheme not in ("http", "https"):
        raise ExternalUrlError("scheme is not http or https")
    if not hostname:
        raise ExternalUrlError("has no host")
    if parsed.username is not None or "@" in parsed.netloc:
        raise ExternalUrlError("has user information")
    try:
        port = parsed.port
    except ValueError as e:
        raise ExternalUrlError(f"bad port: {e}") from e
    if port == 0:
        raise ExternalUrlError("bad port: 0")
    return url.rstrip("/") if parsed.path else url


def scrape_address(url: str) -> tuple[str, str]:
    """The unit scrape address and path Prometheus is given for a validated external URL."""
    parsed = urllib.parse.urlsplit(url)
    return parsed.hostname or "", parsed.path
