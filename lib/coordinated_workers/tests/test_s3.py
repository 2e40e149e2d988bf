# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Object storage: the s3 wire format (checked against the vectors), and how workers get it.

The provider bags are the ones the real ``s3-integrator`` wrote (tests/vectors/cos/s3.json);
the coordinator is an inline charm that requires storage, run through ops.testing with
Kubernetes faked at HTTP.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Iterator

import pytest
from ops import testing

from coordinated_workers._coordinator import WorkloadConfigContext
from coordinated_workers._s3 import (
    S3ConnectionInfo,
    S3DataError,
    from_provider_bag,
    from_secret_content,
    secret_content,
)
from coordinated_workers._s3_share import SECRET_LABEL
from coordinated_workers.testing import read_provider_data, worker_relation
from service_mesh.testing import FakeKubernetes
from tests.support.coordinators import (
    COORDINATOR_CONTAINERS,
    coordinator_charm,
    coordinator_state,
    kubernetes_with,
    minimal_coordinator_config,
)

VECTORS = pathlib.Path(__file__).parents[3] / "tests" / "vectors" / "cos"
S3_VECTOR = json.loads((VECTORS / "s3.json").read_text())
CLUSTER_VECTOR = json.loads(
    (VECTORS / "cluster-coordinator-worker-tls-s3-tracing.json").read_text()
)
PROVIDER_BAG: dict[str, str] = S3_VECTOR["requirer_side_after_changed"]["databags"][
    "s3-integrator"
]
CA_PEM = S3_VECTOR["dummy_s3_ca_pem"].rstrip("\n")

MODEL = "obs"
APP = "coordinator"
META = {
    "name": APP,
    "containers": COORDINATOR_CONTAINERS,
    "provides": {"cluster": {"interface": "cluster"}},
    "requires": {"s3": {"interface": "s3", "limit": 1}},
}
SEEN: list[WorkloadConfigContext] = []


def _worker_config(context: WorkloadConfigContext) -> str:
    SEEN.append(context)
    bucket = context.s3.bucket if context.s3 else None
    return f"bucket: {bucket}\n"


StorageCoordinator = coordinator_charm(
    minimal_coordinator_config(workload_config=_worker_config, s3_required=True)
)


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    with kubernetes_with(APP, MODEL) as fake:
        yield fake


def _ctx() -> testing.Context:
    return testing.Context(StorageCoordinator, meta=META, app_name=APP)


def _state(*relations: testing.RelationBase, **kwargs) -> testing.State:
    return coordinator_state(*relations, model=MODEL, **kwargs)


def _s3(bag: dict[str, str] | None = None, relation_id: int = 21) -> testing.Relation:
    return testing.Relation(
        "s3",
        interface="s3",
        id=relation_id,
        remote_app_name="s3-integrator",
        remote_app_data=dict(PROVIDER_BAG if bag is None else bag),
    )


def _cluster(out: testing.State) -> testing.Relation:
    return next(
        r for r in out.relations if r.endpoint == "cluster" and isinstance(r, testing.Relation)
    )


def _relation(state: testing.State, relation_id: int) -> testing.Relation:
    relation = state.get_relation(relation_id)
    assert isinstance(relation, testing.Relation)
    return relation


def _shared_secret(out: testing.State) -> testing.Secret:
    return next(s for s in out.secrets if s.label == SECRET_LABEL)


# --- the wire format ---------------------------------------------------------------------


def test_provider_bag_of_the_real_s3_integrator_decodes_as_the_library_sees_it():
    info = from_provider_bag(PROVIDER_BAG)
    expected = S3_VECTOR["library_views"]["credentials_changed_event"]
    assert info == S3ConnectionInfo(
        endpoint=expected["endpoint"],
        bucket=expected["bucket"],  # the integrator's bucket wins over our request
        access_key=expected["access_key"],
        secret_key=expected["secret_key"],
        region=expected["region"],
        path=expected["path"],
        s3_uri_style=expected["s3_uri_style"],
        tls_ca_chain=tuple(expected["tls_ca_chain"]),
    )
    assert info is not None and info.tls_ca_chain == (CA_PEM,)
    assert "DUMMY-SECRET-KEY" not in repr(info)


def test_no_credentials_yet_is_no_connection():
    assert from_provider_bag({}) is None
    assert from_provider_bag({"bucket": "b", "endpoint": "https://s3"}) is None
    assert from_provider_bag({**PROVIDER_BAG, "secret-key": ""}) is None


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("endpoint", "ftp://s3.example", r"http\(s\) URL"),
        ("endpoint", "https://s3.example/ x", "characters"),
        ("tls-ca-chain", "not json", "not valid JSON"),
        ("tls-ca-chain", '{"a": 1}', "not a JSON list"),
        ("tls-ca-chain", '["hello"]', "PEM"),
        ("tls-ca-chain", "[1]", "PEM"),
        ("s3-uri-style", "virtual", "s3-uri-style"),
        ("access-key", "a\nb", "unprintable"),
        ("secret-key", "\ud800", "unprintable"),
        ("bucket", "x" * 2000, "longer"),
        ("bucket", "", "without an 'endpoint' and a 'bucket'"),
    ],
)
def test_malformed_provider_bag_is_a_named_error(key, value, reason):
    with pytest.raises(S3DataError, match=reason):
        from_provider_bag({**PROVIDER_BAG, key: value})


def test_secret_content_round_trips_and_holds_no_empty_value():
    info = from_provider_bag(PROVIDER_BAG)
    assert info is not None
    content = secret_content(info)
    assert all(content.values())
    assert content["secret-key"] == "DUMMY-SECRET-KEY"
    assert from_secret_content(content) == info
    with pytest.raises(S3DataError, match="no credentials"):
        from_secret_content({"endpoint": info.endpoint, "bucket": info.bucket})


# --- the coordinator ---------------------------------------------------------------------


def test_required_storage_missing_is_blocked(kube):
    out = _ctx().run(_ctx().on.config_changed(), _state(worker_relation("w", ["work"])))
    assert out.unit_status == testing.BlockedStatus("missing s3 integration")
    assert "s3_secret_id" not in _cluster(out).local_app_data


def test_bucket_request_is_the_requirer_bag_of_the_vector(kube):
    s3 = _s3(bag={}, relation_id=21)
    ctx = _ctx()
    out = ctx.run(ctx.on.relation_joined(s3), _state(worker_relation("w", ["work"]), s3))
    assert out.get_relation(21).local_app_data == S3_VECTOR["requirer_app_databag_after_joined"]
    assert out.unit_status == testing.WaitingStatus("waiting for the s3 provider's credentials")


def test_non_leader_requests_nothing(kube):
    s3 = _s3(bag={})
    ctx = _ctx()
    out = ctx.run(ctx.on.relation_joined(s3), _state(s3, leader=False))
    assert out.get_relation(s3.id).local_app_data == {}


def test_workers_get_the_connection_in_a_granted_secret_and_the_ca_chain_as_upstream(kube):
    SEEN.clear()
    worker = worker_relation("w", ["work"], model=MODEL)
    ctx = _ctx()
    out = ctx.run(ctx.on.config_changed(), _state(worker, _s3()))
    assert out.unit_status == testing.ActiveStatus()
    published = read_provider_data(_cluster(out))
    bag = _cluster(out).local_app_data
    # The credentials are nowhere in the databag, only the secret's id.
    assert not any("DUMMY" in value for value in bag.values())
    secret = _shared_secret(out)
    assert published.s3_secret_id == secret.id
    assert secret.owner == "app"
    assert from_secret_content(secret.tracked_content) == from_provider_bag(PROVIDER_BAG)
    assert secret.remote_grants == {worker.id: {"w"}}
    # s3_tls_ca_chain, byte for byte as upstream coordinated-workers publishes it.
    upstream = CLUSTER_VECTOR["worker_after_cluster_changed"]["cluster_databags"]["coordinator"]
    assert bag["s3_tls_ca_chain"] == upstream["s3_tls_ca_chain"]
    # The worker-config callback sees the storage.
    assert SEEN[-1].s3 is not None and SEEN[-1].s3.bucket == "obs-traces"
    assert published.worker_config == "bucket: obs-traces\n"


def test_steady_hooks_touch_no_secret(kube):
    worker = worker_relation("w", ["work"], model=MODEL)
    ctx = _ctx()
    first = ctx.run(ctx.on.config_changed(), _state(worker, _s3()))
    # Take the secret out of the model: a hook that ran any secret hook tool (get by label,
    # add, set, grant) would fail or create a new one; a steady hook trusts its fingerprint.
    state = dataclasses.replace(first, secrets=[])
    second = ctx.run(ctx.on.config_changed(), state)
    assert not second.secrets
    assert _cluster(second).local_app_data == _cluster(first).local_app_data
    # A new worker app changes what is granted: the secret is looked up again.
    other = worker_relation("v", ["work"], model=MODEL)
    third = ctx.run(
        ctx.on.relation_joined(other),
        dataclasses.replace(first, relations=[*first.relations, other]),
    )
    assert _shared_secret(third).remote_grants == {worker.id: {"w"}, other.id: {"v"}}


def test_new_credentials_update_the_secret_in_place(kube):
    worker = worker_relation("w", ["work"], model=MODEL)
    ctx = _ctx()
    first = ctx.run(ctx.on.config_changed(), _state(worker, _s3()))
    rotated = _replace_remote(
        _relation(first, 21), {**PROVIDER_BAG, "secret-key": "ROTATED-SECRET"}
    )
    changed = dataclasses.replace(
        first, relations=[*[r for r in first.relations if r.id != 21], rotated]
    )
    second = ctx.run(ctx.on.relation_changed(rotated), changed)
    secret = _shared_secret(second)
    assert secret.id == _shared_secret(first).id
    assert secret.latest_content["secret-key"] == "ROTATED-SECRET"
    assert read_provider_data(_cluster(second)).s3_secret_id == secret.id


def _replace_remote(relation: testing.Relation, bag: dict[str, str]) -> testing.Relation:
    return testing.Relation(
        relation.endpoint,
        interface=relation.interface,
        id=relation.id,
        remote_app_name=relation.remote_app_name,
        remote_app_data=bag,
        local_app_data=dict(relation.local_app_data),
    )


def test_malformed_provider_data_keeps_the_last_good_connection(kube):
    worker = worker_relation("w", ["work"], model=MODEL)
    ctx = _ctx()
    first = ctx.run(ctx.on.config_changed(), _state(worker, _s3()))
    broken = _replace_remote(_relation(first, 21), {**PROVIDER_BAG, "tls-ca-chain": "[1"})
    state = dataclasses.replace(
        first, relations=[r for r in first.relations if r.id != 21] + [broken]
    )
    second = ctx.run(ctx.on.relation_changed(broken), state)
    assert isinstance(second.unit_status, testing.BlockedStatus)
    assert second.unit_status.message.startswith("s3: s3:21: 'tls-ca-chain' is not valid JSON")
    assert _cluster(second).local_app_data == _cluster(first).local_app_data
    assert _shared_secret(second).latest_content == _shared_secret(first).latest_content


def test_removing_storage_removes_the_secret_and_the_keys(kube):
    worker = worker_relation("w", ["work"], model=MODEL)
    ctx = _ctx()
    first = ctx.run(ctx.on.config_changed(), _state(worker, _s3()))
    s3 = _relation(first, 21)
    second = ctx.run(ctx.on.relation_broken(s3), first)
    assert not [s for s in second.secrets if s.label == SECRET_LABEL]
    bag = _cluster(second).local_app_data
    assert "s3_secret_id" not in bag and "s3_tls_ca_chain" not in bag
    assert second.unit_status == testing.BlockedStatus("missing s3 integration")


def test_required_storage_without_an_endpoint_is_a_charm_bug():
    class NoEndpoint(StorageCoordinator):
        pass

    ctx = testing.Context(NoEndpoint, meta={**META, "requires": {}}, app_name=APP)
    with pytest.raises(testing.errors.UncaughtCharmError, match="s3_required"):
        ctx.run(ctx.on.config_changed(), _state())
