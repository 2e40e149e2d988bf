# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The worker's side of object storage: the coordinator's secret, read and handed to the layer.

The cluster bag and the secret are taken from what the coordinator of ``test_s3`` publishes,
so both ends are exercised together.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import ops
import pytest
from ops import testing

from coordinated_workers._cluster_data import ClusterProviderAppData
from coordinated_workers._s3 import from_provider_bag, secret_content
from coordinated_workers._worker import WorkerConfig, WorkerContext
from coordinated_workers.testing import coordinator_relation
from tests.support.workers import worker_charm

VECTOR = pathlib.Path(__file__).parents[3] / "tests" / "vectors" / "cos" / "s3.json"
_S3 = json.loads(VECTOR.read_text())
PROVIDER_BAG: dict[str, str] = _S3["requirer_side_after_changed"]["databags"]["s3-integrator"]
CA_PEM = _S3["dummy_s3_ca_pem"].rstrip("\n")

SECRET_ID = "secret:d5g1k2qr0000c0ord1na"
CA_PATH = "/etc/worker/s3_ca.crt"
META = {
    "name": "w",
    "containers": {"workload": {}},
    "requires": {"cluster": {"interface": "cluster", "limit": 1}},
}
CONFIG = {"options": {"role-all": {"type": "boolean", "default": True}}}
SEEN: list[WorkerContext] = []


def _layer(context: WorkerContext) -> ops.pebble.LayerDict:
    SEEN.append(context)
    env = {"S3_BUCKET": context.s3.bucket} if context.s3 else {}
    return {
        "services": {"app": {"override": "replace", "command": "/bin/app", "environment": env}}
    }


StorageWorker = worker_charm(WorkerConfig(container="workload", layer=_layer))


def _ctx() -> testing.Context:
    return testing.Context(StorageWorker, meta=META, config=CONFIG, app_name="w")


def _run(
    data: ClusterProviderAppData, secrets: list[testing.Secret]
) -> tuple[testing.Context, testing.State]:
    ctx = _ctx()
    cluster = coordinator_relation(data, "coordinator")
    state = testing.State(
        leader=False,  # no pod labels to apply: nothing of Kubernetes in these tests
        relations=[cluster],
        containers=[testing.Container("workload", can_connect=True)],
        secrets=secrets,
    )
    return ctx, ctx.run(ctx.on.config_changed(), state)


def _granted(content: dict[str, str]) -> testing.Secret:
    return testing.Secret(tracked_content=content, id=SECRET_ID, owner=None)


def _files(ctx: testing.Context, out: testing.State):
    return out.get_container("workload").get_filesystem(ctx)


def _data(**fields) -> ClusterProviderAppData:
    return ClusterProviderAppData(worker_config="x: 1\n", s3_secret_id=SECRET_ID, **fields)


def test_the_layer_gets_the_connection_and_the_ca_chain_is_written():
    SEEN.clear()
    info = from_provider_bag(PROVIDER_BAG)
    assert info is not None
    ctx, out = _run(_data(s3_tls_ca_chain=info.ca_chain_text), [_granted(secret_content(info))])
    assert out.unit_status == testing.ActiveStatus()
    assert SEEN[-1].s3 == info
    assert (_files(ctx, out) / CA_PATH.lstrip("/")).read_text() == CA_PEM
    env = out.get_container("workload").layers["worker"].services["app"].environment
    assert env == {"S3_BUCKET": "obs-traces"}


def test_a_secret_not_granted_yet_waits_and_starts_nothing():
    _, out = _run(_data(), [])
    assert isinstance(out.unit_status, testing.WaitingStatus)
    assert out.unit_status.message.startswith("s3: cannot read the s3 secret yet")
    assert not out.get_container("workload").layers


@pytest.mark.parametrize(
    "content",
    [
        {"endpoint": "https://s3.example", "bucket": "b"},
        {**secret_content(from_provider_bag(PROVIDER_BAG)), "endpoint": "gopher://x"},  # type: ignore[arg-type]
        {**secret_content(from_provider_bag(PROVIDER_BAG)), "tls-ca-chain": json.dumps(["x"])},  # type: ignore[arg-type]
    ],
)
def test_a_malformed_secret_is_blocked_not_a_crash(content):
    _, out = _run(_data(), [_granted(content)])
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("cluster: s3 secret ignored:")
    assert not out.get_container("workload").layers


def _first_with_chain(ctx: testing.Context, etc: pathlib.Path) -> testing.State:
    """A worker that wrote the s3 chain into `etc`, a folder kept across its hooks."""
    info = from_provider_bag(PROVIDER_BAG)
    assert info is not None
    mount = testing.Mount(location="/etc/worker", source=etc)
    state = testing.State(
        leader=False,
        relations=[coordinator_relation(_data(s3_tls_ca_chain=info.ca_chain_text), "coordinator")],
        containers=[testing.Container("workload", can_connect=True, mounts={"etc": mount})],
        secrets=[_granted(secret_content(info))],
    )
    first = ctx.run(ctx.on.config_changed(), state)
    assert (etc / "s3_ca.crt").read_text() == CA_PEM
    return first


def test_a_chain_no_longer_published_is_removed(tmp_path: pathlib.Path):
    ctx = _ctx()
    first = _first_with_chain(ctx, tmp_path)
    relation = first.get_relations("cluster")[0]
    cluster = dataclasses.replace(relation, remote_app_data=_data().dump())
    ctx.run(ctx.on.config_changed(), dataclasses.replace(first, relations=[cluster]))
    assert not (tmp_path / "s3_ca.crt").exists()


def test_leaving_the_cluster_removes_the_chain(tmp_path: pathlib.Path):
    ctx = _ctx()
    first = _first_with_chain(ctx, tmp_path)
    ctx.run(ctx.on.relation_broken(first.get_relations("cluster")[0]), first)
    assert not (tmp_path / "s3_ca.crt").exists()
