# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Cluster databags: upstream's encoding, strict reading, canonical (never flapping) output."""

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordinated_workers import (
    ClusterDataError,
    ClusterProviderAppData,
    ClusterRequirerAppData,
    ClusterRequirerUnitData,
    JujuTopology,
    RemoteWriteEndpoint,
)

# Captured from upstream (tempo coordinator + one `all` worker), see the reference, section 2.
UPSTREAM_WORKER_APP = {"role": '"all"'}
UPSTREAM_WORKER_UNIT = {
    "address": '"worker-0.worker-endpoints.m.svc.cluster.local"',
    "juju_topology": '{"application": "worker", "unit": "worker/0", "charm_name": "tempo"}',
}
UPSTREAM_COORDINATOR_APP = {
    "worker_config": (
        '"auth_enabled: false\\ncompactor:\\n  compaction:\\n    block_retention: 720h\\n"'
    ),
    "loki_endpoints": '{"loki/0": "http://tempo.m.svc.cluster.local:3300/proxy/loki/loki-0/push"}',
    "charm_tracing_receivers": '{"otlp_http": "http://tempo.m.svc.cluster.local:4318"}',
    "workload_tracing_receivers": '{"otlp_http": "http://tempo.m.svc.cluster.local:4318"}',
    "remote_write_endpoints": (
        '[{"url": "http://tempo.m.svc.cluster.local:3300/proxy/remote-write/prometheus-0/write"}]'
    ),
    "worker_ports": "[3200, 7946, 9096, 4318]",
    "worker_labels": '{"app.kubernetes.io/part-of": "tempo"}',
}


def test_upstream_worker_bags_parse_and_reencode_byte_for_byte():
    app = ClusterRequirerAppData.load(UPSTREAM_WORKER_APP)
    unit = ClusterRequirerUnitData.load(UPSTREAM_WORKER_UNIT)
    assert app.roles == {"all"}
    assert unit.address == "worker-0.worker-endpoints.m.svc.cluster.local"
    assert unit.juju_topology == JujuTopology(
        application="worker", unit="worker/0", charm_name="tempo"
    )
    assert app.dump() == UPSTREAM_WORKER_APP
    assert unit.dump() == UPSTREAM_WORKER_UNIT


def test_upstream_coordinator_bag_parses_and_reencodes_canonically():
    data = ClusterProviderAppData.load(UPSTREAM_COORDINATOR_APP)
    assert data.worker_config == (
        "auth_enabled: false\ncompactor:\n  compaction:\n    block_retention: 720h\n"
    )
    assert data.worker_ports == (3200, 4318, 7946, 9096)
    assert data.remote_write_endpoints == (
        RemoteWriteEndpoint(
            url="http://tempo.m.svc.cluster.local:3300/proxy/remote-write/prometheus-0/write"
        ),
    )
    dumped = data.dump()
    # Every key upstream wrote comes back byte-identical, except that worker ports (a set in
    # meaning) are sorted so that publishing never depends on the order a charm lists them in.
    assert dumped.pop("worker_ports") == "[3200, 4318, 7946, 9096]"
    expected = {k: v for k, v in UPSTREAM_COORDINATOR_APP.items() if k != "worker_ports"}
    assert dumped == expected


def test_upstream_tls_keys_are_read():
    bag = {
        "ca_cert": '"-----BEGIN CERTIFICATE-----\\nCA\\n-----END CERTIFICATE-----"',
        "server_cert": '"-----BEGIN CERTIFICATE-----\\nS\\n-----END CERTIFICATE-----"',
        "privkey_secret_id": '"secret:cvh7kruupa1s46bqvuig"',
        "s3_tls_ca_chain": '"-----BEGIN CERTIFICATE-----\\nQQ==\\n-----END CERTIFICATE-----"',
    }
    data = ClusterProviderAppData.load(bag)
    assert data.privkey_secret_id == "secret:cvh7kruupa1s46bqvuig"
    assert data.ca_cert is not None
    assert data.ca_cert.startswith("-----BEGIN")
    assert data.dump() == bag


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("s3_tls_ca_chain", "chain"),
        ("s3_tls_ca_chain", "-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\nrm"),
        ("s3_secret_id", "secret:../../etc"),
        ("s3_secret_id", "cvh7kruupa1s46bqvuig"),
        ("ca_cert", "CA PEM"),
        ("ca_cert", "-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\u3000"),
        ("s3_tls_ca_chain", "-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\x85"),
        ("ca_cert", "-----BEGIN CERTIFICATE-----\nQQ==\n-----END CERTIFICATE-----\n--x"),
        ("server_cert", "-----BEGIN PRIVATE KEY-----\nQQ==\n-----END PRIVATE KEY-----"),
        ("privkey_secret_id", "secret:../../etc"),
        ("privkey_secret_id", ""),
    ],
)
def test_keys_written_to_files_or_read_as_secrets_are_checked(key: str, value: str):
    with pytest.raises(ClusterDataError, match=key):
        ClusterProviderAppData.load({key: json.dumps(value)})


@pytest.mark.parametrize(
    "model", [ClusterProviderAppData, ClusterRequirerAppData, ClusterRequirerUnitData]
)
def test_empty_bag_parses_and_dumps_empty(model: type[ClusterProviderAppData]):
    assert model.load({}).dump() == {}


def test_unknown_keys_and_juju_keys_are_ignored():
    bag = {**UPSTREAM_WORKER_UNIT, "ingress-address": "10.1.2.3", "future_key": "{not json"}
    assert ClusterRequirerUnitData.load(bag).dump() == UPSTREAM_WORKER_UNIT


def test_topology_extra_fields_written_by_upstream_are_dropped():
    bag = {
        "juju_topology": json.dumps(
            {"model": "m", "model_uuid": "u", "application": "w", "unit": "w/0", "charm_name": "c"}
        )
    }
    assert ClusterRequirerUnitData.load(bag).dump() == {
        "juju_topology": '{"application": "w", "unit": "w/0", "charm_name": "c"}'
    }


@pytest.mark.parametrize(
    ("bag", "reason"),
    [
        ({"worker_config": "auth_enabled: false"}, "worker_config: not valid JSON"),
        ({"worker_config": "42"}, "worker_config: Input should be a valid string"),
        ({"worker_ports": '["8080"]'}, "worker_ports.0: Input should be a valid integer"),
        ({"worker_ports": "[true]"}, "worker_ports.0: Input should be a valid integer"),
        ({"worker_ports": "[8080.0]"}, "worker_ports.0: Input should be a valid integer"),
        ({"worker_ports": "[0]"}, "greater than or equal to 1"),
        ({"worker_ports": "[65536]"}, "less than or equal to 65535"),
        ({"worker_ports": "NaN"}, "worker_ports: Input should be"),
        ({"worker_ports": '"8080"'}, "worker_ports"),
        ({"worker_ports": '{"8080": 1}'}, "worker_ports: Input should be"),
        ({"worker_labels": '{"a": 1}'}, "worker_labels.a: Input should be a valid string"),
        (
            {"remote_write_endpoints": '[{"uri": "x"}]'},
            "remote_write_endpoints.0.url: Field required",
        ),
        ({"loki_endpoints": "[" * 100_000}, "loki_endpoints: not valid JSON"),
        ({"worker_config": json.dumps("x" * (1 << 21))}, "worker_config: value too large"),
        # Pure-ASCII JSON whose decoded text no file or YAML dump can encode (issue 17.2).
        ({"worker_config": '"a: \\ud800"'}, "worker_config: holds text that is not valid"),
        ({"loki_endpoints": '{"\\ud800": "http://l:3100/push"}'}, "loki_endpoints: holds"),
        ({"loki_endpoints": '{"l": "http://l:3100/\\udfff"}'}, "loki_endpoints: holds"),
        ({"worker_labels": '{"a": "\\ud800"}'}, "worker_labels: holds"),
    ],
)
def test_malformed_coordinator_values_are_refused_with_a_reason(bag: dict[str, str], reason: str):
    with pytest.raises(ClusterDataError) as info:
        ClusterProviderAppData.load(bag)
    assert reason in str(info.value)
    assert len(str(info.value)) < 500


def test_a_bad_key_names_itself_even_when_it_is_huge():
    huge_key = "k" * 100_000
    with pytest.raises(ClusterDataError) as info:
        ClusterProviderAppData.load({"worker_labels": json.dumps({huge_key: None})})
    assert "worker_labels.kkkk" in str(info.value)
    assert len(str(info.value)) < 200


def test_many_bad_values_are_summarised():
    with pytest.raises(ClusterDataError, match="and 95 more errors") as info:
        ClusterProviderAppData.load({"worker_ports": json.dumps(list(range(-100, 0)))})
    assert len(str(info.value)) < 500


@pytest.mark.parametrize(
    "address",
    [
        "worker-0.worker-endpoints.m.svc.cluster.local",
        "localhost",
        "10.1.2.3",
        "fd00::1",
    ],
)
def test_addresses_that_are_hosts_are_accepted(address: str):
    assert ClusterRequirerUnitData.load({"address": json.dumps(address)}).address == address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "worker-0; include /etc/passwd",
        "http://worker-0:8080",
        "a..b",
        "-bad.example",
        "a" * 64 + ".example",
        "x." * 127 + "x",
        "new\nline",
        # Python's ipaddress accepts any IPv6 zone id (issue 11, defect 7).
        'fe80::1%x"; } server evil.example:80; {',
        "fe80::1%eth0",
        "fe80::1%25eth0",
        "10.1.2.3%eth0",
    ],
)
def test_addresses_that_could_inject_config_are_refused(address: str):
    with pytest.raises(ClusterDataError, match="address: Value error, not a DNS name or IP"):
        ClusterRequirerUnitData.load({"address": json.dumps(address)})


@pytest.mark.parametrize(
    ("role", "roles"),
    [
        ("all", {"all"}),
        ("read,write", {"read", "write"}),
        (" read , write ,", {"read", "write"}),
        ("", set()),
    ],
)
def test_role_string_is_split_leniently(role: str, roles: set[str]):
    assert ClusterRequirerAppData.load({"role": json.dumps(role)}).roles == roles


def test_roles_are_published_sorted_and_unique():
    assert ClusterRequirerAppData.from_roles(["write", "read", "write"]).dump() == {
        "role": '"read,write"'
    }


@pytest.mark.parametrize("bad", ["a,b", " a", ""])
def test_role_names_the_wire_cannot_carry_are_refused(bad: str):
    with pytest.raises(ValueError, match="cannot be sent"):
        ClusterRequirerAppData.from_roles(["read", bad])


def test_worker_ports_are_validated_when_set():
    data = ClusterProviderAppData(worker_config="c")
    assert data.with_worker_ports([9000, 80, 80]).worker_ports == (80, 9000)
    with pytest.raises(ValueError, match="less than or equal to 65535"):
        data.with_worker_ports([70000])


@pytest.mark.parametrize(
    "url",
    [
        "http://coordinator.obs.svc.cluster.local:8080/proxy/loki/loki-0/push",
        "https://coordinator.obs.svc.cluster.local:8080/proxy/charm-tracing/otlp_http/",
        "http://10.1.2.3:3100",
        "http://[fd00::1]:3100/loki/api/v1/push",
        "tempo-0.tempo-endpoints.obs.svc.cluster.local:4317",
    ],
)
def test_url_a_coordinator_publishes_is_accepted(url: str):
    bag = {"workload_tracing_receivers": json.dumps({"otlp_http": url})}
    assert ClusterProviderAppData.load(bag).workload_tracing_receivers == {"otlp_http": url}


@pytest.mark.parametrize(
    "url",
    [
        "http://host:4318/x --config.file=/etc/passwd",  # argument injection into a command
        "http://host:4318/x;rm",
        'http://host:4318/"x',
        "http://user:pw@host:4318/",
        "http://host:4318/?q=1",
        "http://host:4318/#f",
        "http://[fe80::1%25eth0]:4318/",
        "ftp://host/x",
        "-host:4317",
        "--help",
        "host:99999",
        "http://host:/x",
        "http://ho st:4318/",
    ],
)
@pytest.mark.parametrize("key", ["loki_endpoints", "workload_tracing_receivers"])
def test_url_that_could_inject_into_a_command_is_refused(key: str, url: str):
    """Issue 17 "also look at": URLs go to the charm's layer callback and to Pebble."""
    with pytest.raises(ClusterDataError, match=key):
        ClusterProviderAppData.load({key: json.dumps({"otlp_http": url})})


def test_remote_write_urls_are_checked_too():
    bag = {"remote_write_endpoints": json.dumps([{"url": "http://p:9090/api/v1/write x"}])}
    with pytest.raises(ClusterDataError, match=r"remote_write_endpoints\.0\.url"):
        ClusterProviderAppData.load(bag)


def test_a_key_that_is_no_unit_or_protocol_name_is_refused():
    bag = {"loki_endpoints": json.dumps({"loki 0; x": "http://l:3100/push"})}
    with pytest.raises(ClusterDataError, match="is not a unit or protocol name"):
        ClusterProviderAppData.load(bag)


def test_worker_ports_from_a_coordinator_are_capped():
    """Issue 17 "also look at": each port is an `open-port` hook-tool call on the worker."""
    from coordinated_workers._cluster_data import MAX_WORKER_PORTS

    fine = list(range(1, MAX_WORKER_PORTS + 1))
    assert ClusterProviderAppData.load({"worker_ports": json.dumps(fine)}).worker_ports == tuple(
        fine
    )
    with pytest.raises(ClusterDataError, match="a worker opens at most"):
        ClusterProviderAppData.load({"worker_ports": json.dumps(list(range(1, 65536)))})
    # Our own coordinator is not held to it: publishing never raises.
    assert ClusterProviderAppData(worker_ports=list(range(1, 200))).worker_ports is not None


# --- canonical output -------------------------------------------------------------------------

_text = st.text(max_size=30)
# What a coordinator publishes: a worker refuses other keys and URLs (see test_url_* below).
_names = st.from_regex(r"[a-z][a-z0-9_/-]{0,10}", fullmatch=True)
_urls = st.builds(
    "http://{}:{}/{}".format,
    st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    st.integers(1, 65535),
    st.from_regex(r"[A-Za-z0-9._~/-]{0,30}", fullmatch=True),
)
_pem = st.builds(
    "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----".format,
    st.from_regex(r"[A-Za-z0-9+/]{1,64}={0,2}", fullmatch=True),
)
_pem_chains = st.lists(_pem, min_size=1, max_size=3).map("\n\n".join)
_provider_data = st.builds(
    ClusterProviderAppData,
    worker_config=st.none() | st.text(),
    loki_endpoints=st.none() | st.dictionaries(_names, _urls, max_size=4),
    charm_tracing_receivers=st.none() | st.dictionaries(_names, _urls, max_size=4),
    workload_tracing_receivers=st.none() | st.dictionaries(_names, _urls, max_size=4),
    remote_write_endpoints=st.none()
    | st.lists(st.builds(RemoteWriteEndpoint, url=_urls), max_size=4),
    worker_ports=st.none() | st.lists(st.integers(1, 65535), max_size=6),
    worker_labels=st.none() | st.dictionaries(_text, _text, max_size=4),
    ca_cert=st.none() | _pem_chains,
    server_cert=st.none() | _pem_chains,
    privkey_secret_id=st.none() | st.from_regex(r"secret:[0-9a-v]{20}", fullmatch=True),
    s3_tls_ca_chain=st.none() | _pem_chains,
    s3_secret_id=st.none() | st.from_regex(r"secret:[0-9a-v]{20}", fullmatch=True),
)


@settings(max_examples=200)
@given(data=_provider_data, seed=st.integers())
def test_same_facts_in_any_order_give_identical_bytes(data: ClusterProviderAppData, seed: int):
    shuffle = random.Random(seed).sample

    def reordered(value: Any) -> Any:
        if isinstance(value, dict):
            return dict(shuffle(list(value.items()), len(value)))
        if isinstance(value, (list, tuple)):
            return shuffle(list(value), len(value))
        return value

    twin = ClusterProviderAppData(**{k: reordered(v) for k, v in dict(data).items()})
    assert twin.dump() == data.dump()
    assert json.dumps(twin.dump(), sort_keys=False) == json.dumps(data.dump(), sort_keys=False)


@settings(max_examples=200)
@given(data=_provider_data)
def test_provider_data_round_trips(data: ClusterProviderAppData):
    assert ClusterProviderAppData.load(data.dump()) == data


def test_dump_is_ascii_with_upstream_separators():
    data = ClusterProviderAppData(worker_labels={"b": "é", "a": "x"}, worker_ports=[2, 1])
    assert data.dump() == {
        "worker_labels": '{"a": "x", "b": "\\u00e9"}',
        "worker_ports": "[1, 2]",
    }
