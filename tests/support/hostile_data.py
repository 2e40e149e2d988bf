# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
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


# ----- round 3 (issue 17): text real ops cannot encode, URLs that inject, label records -----

surrogate_text = st.lists(
    st.one_of(
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
        st.characters(codec="ascii"),
        st.characters(),
    ),
    max_size=12,
).map("".join)
"""Text that may hold lone surrogates; ``json.dumps`` turns them into pure-ASCII escapes."""

injecting_urls = st.sampled_from(
    [
        "http://host:4318/x --config.file=/etc/passwd",
        "http://host:4318/x;rm -rf /",
        'http://host:4318/"$(id)"',
        "http://user:pw@host:4318/",
        "http://host:4318/?q=1",
        "http://[fe80::1%25eth0]:4318/",
        'http://[fe80::1%x"; } server evil.example:80; {]:1/',
        "-host:4317",
        "--help",
        "host:0",
        "http://h:1/\ud800",
    ]
)
"""URLs a charm must never paste into a Pebble command."""

many_ports = st.sampled_from([101, 1_000, 65_535]).map(lambda n: list(range(1, n + 1)))
"""More ports than a worker opens (each is one ``open-port`` hook-tool call)."""

record_label_keys = st.one_of(
    st.sampled_from(
        [
            "app.kubernetes.io/name",  # Juju's selector: nulling it is refused forever
            "/x",  # empty prefix
            "a/",
            "Bad Key",
            "istio.io/dataplane-mode",
            "app.kubernetes.io/part-of",
            "x" * 64,
        ]
    ),
    surrogate_text,
    st.text(max_size=20),
)
record_labels_json = st.one_of(
    st.dictionaries(record_label_keys, st.text(max_size=10) | surrogate_text, max_size=5).map(
        json.dumps
    ),
    encoded(json_values),
    deep_json,
    st.text(max_size=30),
)
"""The ``labels`` value of a label record someone (or something) edited."""


# ----- issue 14: the TLS keys of the cluster bag and the key's secret ---------------------------


def pem_variants(valid: str) -> st.SearchStrategy[str]:
    """A real PEM text, and the ways a coordinator (or an attacker) could get it wrong.

    Truncated, with a line of junk, base64 that is no DER, another kind of PEM block, the
    block twice, surrogates, sizes far beyond any certificate.
    """
    lines = valid.split("\n")
    header, footer = lines[0], lines[-1]
    return st.one_of(
        st.just(valid),
        st.integers(1, max(1, len(valid) - 1)).map(lambda n: valid[:n]),
        st.just("\n".join([*lines[:2], "$(reboot)", *lines[2:]])),
        st.just(f"{header}\nQUJD\n{footer}"),
        st.just(f"{header}\n{'QUJD' * 16}\n{footer}"),
        st.just(valid.replace("CERTIFICATE", "PRIVATE KEY")),
        st.just(f"{valid}\n\n{valid}"),
        st.just(f"{valid}\n--config.file=/etc/passwd"),
        # Unicode whitespace, which a str regex's \s accepts and OpenSSL's ASCII PEM does not
        st.sampled_from(["\u3000", "\n\u2028", "\x85", "\u00a0"]).map(lambda ws: valid + ws),
        surrogate_text.map(lambda text: f"{header}\n{text}\n{footer}"),
        st.sampled_from([1 << 10, 1 << 20]).map(lambda n: f"{header}\n{'A' * n}\n{footer}"),
        st.text(max_size=40),
    )


secret_id_like = st.one_of(
    st.just("secret:d5g1k2qr0000c0ord1na"),
    st.just("secret://3b1f6a2e-7c4d-4e8a-9f10-2a5b6c7d8e9f/d5g1k2qr0000c0ord1na"),
    st.sampled_from(["", "secret:", "secret:../../etc", "d5g1k2qr0000c0ord1na", "secret:X" * 3]),
    st.from_regex(r"secret:[0-9a-z]{20}", fullmatch=True),
    surrogate_text,
)
"""Juju secret ids, the same id in its long form, and things that are not one."""


def key_secret_contents(valid_key: str) -> st.SearchStrategy[dict[str, str]]:
    """Contents of the key's secret: the key, another one, none, or something else entirely."""
    return st.one_of(
        st.just({"private-key": valid_key}),
        pem_variants(valid_key).map(lambda key: {"private-key": key}),
        st.dictionaries(
            st.sampled_from(["private-key", "key", "certificate"]),
            st.text(max_size=30) | surrogate_text,
            min_size=1,
            max_size=2,
        ),
    )


# ----- the grafana_datasource_exchange bag (its only key, ``datasources``) -------------------

_datasource_text = st.one_of(st.text(max_size=12), surrogate_text, st.just(""))
datasource_entries = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": _datasource_text | st.integers() | st.none(),
            "uid": _datasource_text | st.lists(st.text(max_size=4), max_size=2),
            "grafana_uid": _datasource_text | st.floats(allow_nan=False),
            "extra": json_values,
        },
    ),
    max_size=4,
)
"""Near-valid ``datasources`` lists: entries with each field missing, mistyped or hostile."""
