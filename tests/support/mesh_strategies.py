"""Hypothesis strategies for realistic, valid :class:`service_mesh.MeshPolicy` objects.

"Valid" means valid for our models, which are stricter than upstream's: a unit policy always
has a target and restricts ports only. Names are DNS-1123 labels, as Juju application and
model names are; about half of them are long, so the name-truncation path is exercised too.
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
"""Juju-style application, model and Service names (DNS-1123 labels, 1-63 characters)."""

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
            st.tuples(dns_labels, st.none()),
            st.tuples(st.none(), dns_labels),
            st.tuples(dns_labels, dns_labels),
        )
    )
    return MeshPolicy(
        source_namespace=draw(dns_labels),
        source_app_name=draw(dns_labels),
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
            st.tuples(dns_labels, st.sampled_from([None, {}])),
            st.tuples(st.none(), selector_labels),
        )
    )
    return MeshPolicy(
        source_namespace=draw(dns_labels),
        source_app_name=draw(dns_labels),
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
