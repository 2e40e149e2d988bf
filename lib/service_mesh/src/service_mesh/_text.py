# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Text that came from another application, made safe to log and to show in a status.

Under Juju a log record and a status message are arguments of a hook tool (``juju-log``,
``status-set``): a lone surrogate cannot be encoded onto the command line and a huge argument is
refused by the kernel, and either would fail the hook. Every piece of remote text that reaches
a message goes through :func:`safe_text` first.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

STATUS_LIMIT = 512
"""The longest status message a charm should set (the whole message, not one quoted part)."""


def safe_text(text: str, limit: int = 120) -> str:
    r"""``text`` capped at ``limit`` characters, with anything unprintable backslash-escaped.

    Surrogates and control characters become their ``\u``/``\x`` escapes, so the result is
    one printable line that encodes as UTF-8; what was cut is counted, not shown.
    """
    head = text[:limit]
    if not head.isprintable():
        head = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in head)
    if len(text) > limit:
        head += f"... ({len(text) - limit} more characters)"
    return head


_ROOM_FOR_COUNT = 32  # what safe_text appends to a cut text: "... (<n> more characters)"


def status_text(
    message: str, *, log: logging.Logger = logger, what: str = "status message"
) -> str:
    """``message`` escaped and cut to ``STATUS_LIMIT`` characters, fit for ``status-set``.

    ``status-set`` fails the hook on a surrogate or an argument the kernel finds too long; a
    message that had to be cut is logged in full (escaped) at DEBUG, as "<what> in full", on
    the caller's logger ``log``.
    """
    if len(message) <= STATUS_LIMIT and message.isprintable():
        return message
    escaped = safe_text(message, len(message))
    if len(escaped) <= STATUS_LIMIT:
        return escaped
    log.debug("%s in full: %s", what, escaped)
    return safe_text(escaped, STATUS_LIMIT - _ROOM_FOR_COUNT)
