"""Problems found while reconciling, as values a charm turns into a status in collect-status."""

from __future__ import annotations

import dataclasses
import logging
from typing import Literal

import ops

from service_mesh import STATUS_LIMIT, safe_text
from service_mesh.errors import CRDMissingError, KubernetesError, MalformedResponseError

logger = logging.getLogger(__name__)

Level = Literal["blocked", "waiting", "maintenance"]
_DETAIL_LIMIT = 120  # characters of an error quoted in a status message
_ROOM_FOR_COUNT = 32  # what safe_text appends to a cut text: "... (<n> more characters)"


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something that keeps the unit from being fully active, and what the operator can do."""

    level: Level
    message: str

    @classmethod
    def blocked(cls, message: str) -> Problem:
        """A problem only the operator can fix (a missing relation, `juju trust`, bad data)."""
        return cls("blocked", message)

    @classmethod
    def waiting(cls, message: str) -> Problem:
        """A problem expected to clear by itself (a container starting, an API hiccup)."""
        return cls("waiting", message)

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
        if self.level == "blocked":
            return ops.BlockedStatus(message)
        if self.level == "waiting":
            return ops.WaitingStatus(message)
        return ops.MaintenanceStatus(message)


_CAUSES = {
    401: "rejected the charm's credentials",
    404: "has no such object",
    409: "reported a conflicting change",
    422: "refused an invalid object",
    429: "is throttling requests",
}


def kubernetes_problem(what: str, error: KubernetesError, app: str) -> Problem:
    """Turn a Kubernetes failure into a status that names its cause and what to do.

    A 403 asks for trust and a missing CRD for Istio, both blocked since only the operator can
    fix them; anything else (credentials, conflicts, throttling, server errors, no answer at
    all) may clear by itself, so the unit waits and the next event retries.
    """
    code = error.status_code
    if code == 403:
        return Problem.blocked(
            f"{what}: Kubernetes API forbidden; run `juju trust {app} --scope=cluster`"
        )
    if isinstance(error, CRDMissingError):
        return Problem.blocked(
            f"{what}: Istio AuthorizationPolicy CRD missing; is Istio installed?"
        )
    if isinstance(error, MalformedResponseError):
        cause = "Kubernetes API sent a malformed answer"
    elif code is None:
        cause = "Kubernetes API unreachable"
    elif code >= 500:
        cause = f"Kubernetes API server error ({code})"
    else:
        cause = f"Kubernetes API {_CAUSES.get(code, 'error')} ({code})"
    return Problem.waiting(f"{what}: {cause}; retrying on the next event")


def pebble_problem(container: str, error: ops.pebble.Error) -> Problem:
    """Pebble answered, but with an error (a 5xx, a service that would not start): wait.

    An unreachable Pebble is reported apart, as "waiting for the <container> container".
    """
    detail = safe_text(str(error), _DETAIL_LIMIT)
    return Problem.waiting(f"{container}: Pebble failed ({detail}); retrying on the next event")
