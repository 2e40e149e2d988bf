"""Hypothesis strategies for databag values a remote app might write: valid, odd or hostile.

A databag maps strings to strings. Useful fuzzing mixes plain garbage with values that get
past the first checks (valid JSON, the right top-level shape, a URL-looking string) so the
deeper branches of a reader run too.
"""

from __future__ import annotations

import json

from hypothesis import provisional
from hypothesis import strategies as st

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON document."""

url_like = st.one_of(
    provisional.urls(),
    st.sampled_from(
        [
            "",
            "http://",
            "http:///path",
            "https://host:99999/x",
            "https://host:port/x",
            "ftp://host/x",
            "http://[::1/x",
            "http://h o s t/x",
            "http://host/x\n",
            "http://host/${x};",
            "http://host/" + "a" * 2100,
            "host:4317",
            "host",
            ":4317",
            "//host:1",
        ]
    ),
    st.text(max_size=40),
)
"""Strings that are URLs, almost URLs, or not URLs at all."""

deep_json = st.sampled_from([1, 500, 5_000]).map(lambda n: "[" * n + "]" * n)
"""Valid JSON, sometimes nested deeper than Python's decoder can follow (about 1000)."""


def encoded(values: st.SearchStrategy[object]) -> st.SearchStrategy[str]:
    """JSON-encode what `values` generates, as a databag value."""
    return values.map(json.dumps)


def databag_values(near_valid: st.SearchStrategy[object]) -> st.SearchStrategy[str]:
    """Values for one databag key: garbage text, any JSON, too-deep JSON, or near-valid JSON."""
    return st.one_of(
        st.text(max_size=30),
        encoded(json_values),
        deep_json,
        encoded(near_valid),
    )


def databags(key: str, near_valid: st.SearchStrategy[object]) -> st.SearchStrategy[dict[str, str]]:
    """Whole databags: maybe `key` with a hostile value, plus unrelated keys."""

    def bag(extra: dict[str, str], value: str | None) -> dict[str, str]:
        return {**extra, **({} if value is None else {key: value})}

    return st.builds(
        bag,
        st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
        st.none() | databag_values(near_valid),
    )
