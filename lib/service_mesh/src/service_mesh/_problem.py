# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Something that keeps a unit from being fully active, as a value a charm turns into a status.

Both libraries report what is wrong with :class:`Problem` values and never set a status
themselves: the charm adds ``problem.status()`` in its collect-status handler.
"""

from __future__ import annotations

import dataclasses
import enum
import logging

import ops

from ._text import status_text

logger = logging.getLogger(__name__)


class ProblemLevel(str, enum.Enum):
    """Which status a problem asks for; the value is the status's name."""

    BLOCKED = "blocked"
    """Only the operator can fix it (a missing relation, `juju trust`, bad data)."""
    WAITING = "waiting"
    """Expected to clear by itself (a container starting, an API hiccup)."""
    MAINTENANCE = "maintenance"
    """The charm is doing something that takes a while."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something that keeps the unit from being fully active, and what the operator can do."""

    level: ProblemLevel
    message: str

    @classmethod
    def blocked(cls, message: str) -> Problem:
        """A problem only the operator can fix (a missing relation, `juju trust`, bad data)."""
        return cls(ProblemLevel.BLOCKED, message)

    @classmethod
    def waiting(cls, message: str) -> Problem:
        """A problem expected to clear by itself (a container starting, an API hiccup)."""
        return cls(ProblemLevel.WAITING, message)

    def status(self) -> ops.StatusBase:
        """The unit status for this problem, for ``CollectStatusEvent.add_status``.

        The message is escaped and capped at ``STATUS_LIMIT`` characters, since ``status-set``
        fails the hook on a surrogate or an argument the kernel finds too long; a message that
        had to be cut is logged in full (escaped) at DEBUG.
        """
        message = status_text(self.message, log=logger)
        if self.level == ProblemLevel.BLOCKED:
            return ops.BlockedStatus(message)
        if self.level == ProblemLevel.WAITING:
            return ops.WaitingStatus(message)
        return ops.MaintenanceStatus(message)
