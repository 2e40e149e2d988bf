"""Something that keeps a unit from being fully active, as a value a charm turns into a status.

Both libraries report what is wrong with :class:`Problem` values and never set a status
themselves: the charm adds ``problem.status()`` in its collect-status handler.
"""

from __future__ import annotations

import dataclasses
import enum
import logging

import ops

from ._text import STATUS_LIMIT, safe_text

logger = logging.getLogger(__name__)

_ROOM_FOR_COUNT = 32  # what safe_text appends to a cut text: "... (<n> more characters)"


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
        message = self.message
        if len(message) > STATUS_LIMIT or not message.isprintable():
            escaped = safe_text(message, len(message))
            if len(escaped) > STATUS_LIMIT:
                logger.debug("status message in full: %s", escaped)
                escaped = safe_text(escaped, STATUS_LIMIT - _ROOM_FOR_COUNT)
            message = escaped
        if self.level == ProblemLevel.BLOCKED:
            return ops.BlockedStatus(message)
        if self.level == ProblemLevel.WAITING:
            return ops.WaitingStatus(message)
        return ops.MaintenanceStatus(message)
