"""Problems found while reconciling, as values a charm turns into a status in collect-status."""

from __future__ import annotations

import dataclasses
from typing import Literal

import ops

from service_mesh.errors import CRDMissingError, KubernetesError

Level = Literal["blocked", "waiting", "maintenance"]


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
        """The unit status for this problem, for ``CollectStatusEvent.add_status``."""
        if self.level == "blocked":
            return ops.BlockedStatus(self.message)
        if self.level == "waiting":
            return ops.WaitingStatus(self.message)
        return ops.MaintenanceStatus(self.message)


def kubernetes_problem(what: str, error: KubernetesError, app: str) -> Problem:
    """Turn a Kubernetes failure into advice: trust for 403, Istio for a missing CRD, or retry."""
    if error.status_code in (401, 403):
        return Problem.blocked(
            f"{what}: Kubernetes API forbidden; run `juju trust {app} --scope=cluster`"
        )
    if isinstance(error, CRDMissingError):
        return Problem.blocked(
            f"{what}: Istio AuthorizationPolicy CRD missing; is Istio installed?"
        )
    code = f" ({error.status_code})" if error.status_code else ""
    return Problem.waiting(f"{what}: Kubernetes API error{code}; retrying on the next event")
