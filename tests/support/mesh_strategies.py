# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Hypothesis strategies for realistic, valid :class:`service_mesh.MeshPolicy` objects.

"Valid" means valid for our models, which are stricter than upstream's: a unit policy always
has a target and restricts ports only, and names follow Juju's and Kubernetes' rules (model
names are DNS-1123 labels, ``--`` included; application names Juju's words joined by single
hyphens). About half of the names are long, so the name-truncation path is exercised too.
"""

from __future__ import annotations

from hypothesis import strategies as st

from service_mesh import Endpoint, MeshPolicy, Method, PolicyTargetType

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"


def _names(
    first: str, middle: str, last: str, min_size: int, max_size: int
) -> st.SearchStrategy[str]:
    """Strings of ``min_size..max_size`` chars: one of ``first``, ``middle``s, one of ``last``."""
    return st.builds(
        lambda head, body, tail: head + body + tail,
        st.sampled_from(first),
        st.text(middle, min_size=max(min_size - 2, 0), max_size=max_size - 2),
        st.sampled_from(last),
    ) | (st.sampled_from(first) if min_size <= 1 else st.nothing())


def _dns_labels(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return _names(_LOWER, _LOWER + _DIGITS + "-", _LOWER + _DIGITS, min_size, max_size)


dns_labels = _dns_labels(1, 16) | _dns_labels(48, 63)
"""Kubernetes namespaces, i.e. Juju model names on Kubernetes (DNS-1123 labels, 1-63 chars)."""

_app_word = st.builds(
    lambda head, letter, tail: head + letter + tail,
    st.text(_LOWER + _DIGITS, max_size=6),
    st.sampled_from(_LOWER),
    st.text(_LOWER + _DIGITS, max_size=6),
)


def _app_names(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Juju application names: a word starting with a letter, then words with a letter each."""
    first = st.builds(
        lambda letter, tail: letter + tail,
        st.sampled_from(_LOWER),
        st.text(_LOWER + _DIGITS, max_size=max_size - 1),
    )
    joined = st.builds(
        lambda head, words: "-".join([head, *words])[:max_size],
        first,
        st.lists(_app_word, max_size=8),
    )
    # Cutting at max_size can leave a trailing hyphen or an all-digit last word: drop those.
    return joined.filter(
        lambda name: (
            len(name) >= min_size
            and not name.endswith("-")
            and any(c in _LOWER for c in name.rpartition("-")[2])
        )
    )


app_names = _app_names(1, 16) | _app_names(48, 63)
"""Juju application names that can exist on Kubernetes (63 characters at most)."""

service_names = _names(_LOWER, _LOWER + _DIGITS + "-", _LOWER + _DIGITS, 1, 16) | _names(
    _LOWER, _LOWER + _DIGITS + "-", _LOWER + _DIGITS, 48, 63
)
"""Kubernetes Service names (DNS-1035 labels)."""

_short_labels = _dns_labels(1, 12)
_label_names = _names(
    _LOWER + _LOWER.upper() + _DIGITS,
    _LOWER + _LOWER.upper() + _DIGITS + "-_.",
    _LOWER + _LOWER.upper() + _DIGITS,
    1,
    22,
)
label_keys = st.builds(
    lambda prefix, name: f"{'.'.join(prefix)}/{name}" if prefix else name,
    st.lists(_short_labels, max_size=4),
    _label_names,
)
label_values = st.just("") | _label_names
selector_labels = st.dictionaries(label_keys, label_values, min_size=1, max_size=4)

ports = st.lists(st.integers(min_value=1, max_value=65535), max_size=4)
hosts = st.builds(
    lambda wildcard, labels, port: ("*." if wildcard else "") + ".".join(labels) + port,
    st.booleans(),
    st.lists(_short_labels, min_size=1, max_size=5),
    st.just("") | st.integers(1, 65535).map(lambda p: f":{p}"),
)
paths = st.just("*") | st.builds(
    lambda star_in, body, star_out: (
        ("*" if star_in else "") + "/" + body + ("*" if star_out else "")
    ),
    st.booleans(),
    st.text(_LOWER + _LOWER.upper() + _DIGITS + "-_./", max_size=30),
    st.booleans(),
)
methods = st.lists(st.sampled_from(Method), max_size=4)

l7_endpoints = st.builds(
    Endpoint,
    hosts=st.none() | st.lists(hosts, max_size=3),
    ports=st.none() | ports,
    methods=st.none() | methods,
    paths=st.none() | st.lists(paths, max_size=3),
)
# Empty lists restrict nothing, so a unit (L4) policy may carry them.
l4_endpoints = st.builds(
    Endpoint,
    hosts=st.sampled_from([None, []]),
    ports=st.none() | ports,
    methods=st.sampled_from([None, []]),
    paths=st.sampled_from([None, []]),
)


@st.composite
def app_policies(draw: st.DrawFn) -> MeshPolicy:
    """Policies that protect a Service, named by target_app_name, target_service or both."""
    target_app, target_service = draw(
        st.one_of(
            st.tuples(app_names, st.none()),
            st.tuples(st.none(), service_names),
            st.tuples(app_names, service_names),
        )
    )
    return MeshPolicy(
        source_namespace=draw(dns_labels),
        source_app_name=draw(app_names),
        target_namespace=draw(dns_labels),
        target_app_name=target_app,
        target_selector_labels=draw(st.sampled_from([None, {}])),
        target_service=target_service,
        target_type=PolicyTargetType.app,
        endpoints=draw(st.lists(l7_endpoints, max_size=3)),
    )


@st.composite
def unit_policies(draw: st.DrawFn) -> MeshPolicy:
    """Policies that protect pods, chosen by Juju's app label or by explicit selector labels."""
    target_app, labels = draw(
        st.one_of(
            st.tuples(app_names, st.sampled_from([None, {}])),
            st.tuples(st.none(), selector_labels),
        )
    )
    return MeshPolicy(
        source_namespace=draw(dns_labels),
        source_app_name=draw(app_names),
        target_namespace=draw(dns_labels),
        target_app_name=target_app,
        target_selector_labels=labels,
        target_type=PolicyTargetType.unit,
        endpoints=draw(st.lists(l4_endpoints, max_size=3)),
    )


mesh_policies = app_policies() | unit_policies()
"""Any valid MeshPolicy."""


# ----- what a consumer may put in its ``policies`` (issue 17.1) ------------------------------


def consumer_policy_dicts(consumer: str, namespace: str) -> st.SearchStrategy[dict[str, object]]:
    """Policies as a (possibly hostile) consumer writes them: some its own, most not.

    Targets are the consumer itself, another app, another namespace (``kube-system``), its
    own or another Service, or a selector; sources are Juju names or not.
    """
    return st.fixed_dictionaries(
        {
            "source_namespace": st.sampled_from([namespace, "other", "*", "Bad_NS", "a--b"]),
            "source_app_name": st.sampled_from(["grafana", "Evil_App", "*", "a-", "x"]),
            "target_namespace": st.sampled_from([namespace, "kube-system", "other"]),
            "target_app_name": st.sampled_from([consumer, "coredns", "loki", None]),
            "target_type": st.sampled_from(["app", "unit"]),
        },
        optional={
            "target_service": st.sampled_from([consumer, f"{consumer}-gateway", "kube-dns"]),
            "target_selector_labels": st.sampled_from(
                [{"app.kubernetes.io/managed-by": "juju"}, {"app.kubernetes.io/name": consumer}]
            ),
            "endpoints": st.lists(
                st.fixed_dictionaries({}, optional={"ports": ports}), max_size=2
            ),
        },
    )


# ----- names and ports Juju or Kubernetes refuse, for the hostile consumer bags --------------

model_names_with_double_hyphens = st.builds(
    lambda head, tail: f"{head}--{tail}", _dns_labels(1, 20), _dns_labels(1, 20)
)
"""Model names such as ``obs--prod``: Juju and Kubernetes accept them (upstream's pattern not)."""

invalid_app_names = st.one_of(
    st.sampled_from(["Evil_App", "app-1", "a--b", "1app", "-app", "app-", "*", "a/b", ""]),
    _app_names(1, 16).map(str.upper),
    _app_names(1, 16).map(lambda name: name + "-7"),
    st.just("a" * 64),
    st.text(max_size=12),
)
"""Application names Juju or Kubernetes refuse (plus some random text, mostly refused too)."""

invalid_namespaces = st.one_of(
    st.sampled_from(["cos-", "-cos", "Cos", "a_b", "a/b", "", "n" * 64]), st.text(max_size=12)
)
"""Namespaces (model names) Kubernetes refuses, and random text."""

bad_ports = st.one_of(st.integers(max_value=0), st.integers(min_value=65536), st.just(65536))
"""Port numbers outside 1-65535."""


def _policy_dict(policy: MeshPolicy) -> dict[str, object]:
    return policy.model_dump(mode="json")


@st.composite
def near_valid_consumer_policies(draw: st.DrawFn) -> dict[str, object]:
    """A policy as a consumer bag holds it: valid, or valid but for one name or one port."""
    policy = _policy_dict(draw(mesh_policies))
    flaw = draw(st.sampled_from(["none", "app", "namespace", "port", "double-hyphen-model"]))
    if flaw == "app":
        field = draw(st.sampled_from(["source_app_name", "target_app_name"]))
        policy[field] = draw(invalid_app_names)
    elif flaw == "namespace":
        field = draw(st.sampled_from(["source_namespace", "target_namespace"]))
        policy[field] = draw(invalid_namespaces)
    elif flaw == "port":
        policy["endpoints"] = [{"ports": [draw(bad_ports)]}]
    elif flaw == "double-hyphen-model":
        policy["source_namespace"] = draw(model_names_with_double_hyphens)
    return policy
