# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""safe_text: remote text in a log record or a status can always be passed to a hook tool."""

import os

from hypothesis import given
from hypothesis import strategies as st

from service_mesh import safe_text


def test_short_printable_text_is_unchanged():
    assert safe_text("worker-read: unknown role 'x'") == "worker-read: unknown role 'x'"


def test_surrogates_and_control_characters_are_escaped():
    assert safe_text("read,\ud800\n\x1b[31m") == "read,\\ud800\\n\\x1b[31m"


def test_long_text_is_capped_and_the_rest_counted():
    assert safe_text("k" * 200_000, limit=10) == "kkkkkkkkkk... (199990 more characters)"


@given(st.text(), st.integers(min_value=1, max_value=600))
def test_any_text_becomes_one_short_encodable_line(text: str, limit: int):
    shown = safe_text(text, limit)
    shown.encode("utf-8")  # what a hook tool's argv needs
    os.fsencode(shown)
    assert shown.isprintable()
    # each cut character may escape to at most 10 ("\U0010ffff"), plus the count of what was cut
    assert len(shown) <= 10 * limit + 40
