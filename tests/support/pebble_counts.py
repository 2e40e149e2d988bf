# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Counting, at ops.testing's fakes (the edges), what a worker hook asks of Juju and Pebble.

The TLS tests show with these counts when a worker reads the key's secret (``secret-get``),
restarts its workload and pulls its TLS files back; `pebble_goes_away_on` interrupts a hook.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import ops
import pytest
from scenario.mocking import _MockModelBackend, _MockPebbleClient


@dataclasses.dataclass
class Counts:
    secret_reads: int = 0
    restarts: int = 0
    tls_pulls: int = 0


@contextlib.contextmanager
def counted() -> Iterator[Counts]:
    """Count ``secret-get`` calls, Pebble restarts and pulls of certificate and key files."""
    counts = Counts()
    secret_get = _MockModelBackend.secret_get
    restart = _MockPebbleClient.restart_services
    pull = _MockPebbleClient.pull

    def counting_get(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts.secret_reads += 1
        return secret_get(self, *args, **kwargs)

    def counting_restart(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts.restarts += 1
        return restart(self, *args, **kwargs)

    def counting_pull(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        counts.tls_pulls += path.endswith((".cert", ".key", ".crt"))
        return pull(self, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_MockPebbleClient, "pull", counting_pull)
        patch.setattr(_MockModelBackend, "secret_get", counting_get)
        patch.setattr(_MockPebbleClient, "restart_services", counting_restart)
        yield counts


@contextlib.contextmanager
def pebble_goes_away_on(method: str, nth: int) -> Iterator[list[str]]:
    """Pebble's ``method`` (e.g. ``push``) fails with ConnectionError on its `nth` call.

    A worker must finish, in a later hook, what a Pebble that went away interrupted; ops.testing
    has no public way to fail the middle of a sequence, so this is injected at its fake Pebble
    client. Yields the paths the method was called with.
    """
    original = getattr(_MockPebbleClient, method)
    calls: list[str] = []

    def failing(self: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(path)
        if len(calls) == nth:
            raise ops.pebble.ConnectionError("Pebble went away")
        return original(self, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_MockPebbleClient, method, failing)
        yield calls
