# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Problem.status(): whatever a message holds, status-set can take it.

A status message is an argument of ``status-set``: a lone surrogate cannot be encoded onto the
command line and an argument of hundreds of kilobytes is refused by the kernel. Issue 11 had
both crash every hook (defects 3 and 4).
"""

from __future__ import annotations

import logging

import ops
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordinated_workers import Problem
from service_mesh import STATUS_LIMIT


def test_an_ordinary_message_is_unchanged():
    assert Problem.blocked("worker worker-read: no roles").status() == ops.BlockedStatus(
        "worker worker-read: no roles"
    )


def test_a_long_message_is_cut_to_the_limit_and_logged_in_full(caplog: pytest.LogCaptureFixture):
    message = "service-mesh: " + "k" * 200_000
    with caplog.at_level(logging.DEBUG):
        status = Problem.waiting(message).status()

    assert isinstance(status, ops.WaitingStatus)
    assert len(status.message) <= STATUS_LIMIT
    assert status.message.startswith("service-mesh: kkk")
    assert status.message.endswith("more characters)")
    assert any(record.getMessage().endswith(message) for record in caplog.records)


def test_surrogates_and_control_characters_are_escaped():
    status = Problem.blocked("role \ud800\n").status()
    assert status.message == "role \\ud800\\n"


@given(st.text(), st.sampled_from(["blocked", "waiting", "maintenance"]))
def test_any_message_gives_a_status_status_set_can_take(message: str, level: str):
    status = Problem(level, message).status()  # pyright: ignore[reportArgumentType]
    status.message.encode("utf-8")
    assert status.message.isprintable()
    assert len(status.message) <= STATUS_LIMIT
    assert status.name == level


@given(st.text(st.characters(categories=["Cs", "Cc"]), min_size=400, max_size=2000))
def test_escaping_never_lets_a_status_grow_past_the_limit(message: str):
    assert len(Problem.blocked(message).status().message) <= STATUS_LIMIT
