# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""What went wrong: the library's error base, and Kubernetes and Pebble failures as Problems."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from service_mesh import Problem, ProblemLevel, safe_text
from service_mesh.errors import CRDMissingError, KubernetesError, MalformedResponseError

if TYPE_CHECKING:
    import ops

logger = logging.getLogger(__name__)

_DETAIL_LIMIT = 120  # characters of an error quoted in a status message

__all__ = [
    "CoordinatedWorkersError",
    "Problem",
    "ProblemLevel",
    "kubernetes_problem",
    "pebble_problem",
]


class CoordinatedWorkersError(Exception):
    """Base class of every named error of coordinated_workers.

    Each error keeps the built-in base it had (``ValueError`` for bad input), so code that
    caught that one keeps working; a charm may catch this base to catch them all.
    """


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
