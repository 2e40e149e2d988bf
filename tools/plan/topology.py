# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The topology file: what to deploy, in the terms a Juju user thinks in.

A topology names one model holding a coordinator and its worker apps, says whether the cluster
is on the mesh (related to istio-beacon-k8s), which telemetry backends are related, and which
apps in other models use the coordinator's API across models. Unknown fields are refused, so a
typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import difflib
import pathlib
import re
import uuid
from typing import Annotated, Any, Literal, cast

import pydantic
import yaml

from service_mesh import label_problem

from . import charms

DEFAULT_TOPOLOGY = pathlib.Path(__file__).with_name("default-topology.yaml")
MAX_FILE_BYTES = 1_000_000
"""A topology is a few hundred lines at most; a bigger file is a mistake (or an attack)."""
MAX_UNITS = 600
"""Units the plan simulates (coordinator, workers, beacon). Each runs a few hooks, so time and
memory grow linearly with them (``benchmarks/plan.py``); a bigger plan is refused up front."""

_APP_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$")
_MODEL_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _juju_app_name(value: str) -> str:
    if not _APP_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Juju application name: use lowercase letters, digits and "
            "dashes, start with a letter, and give every dash-separated part a letter "
            "(e.g. worker-read, not worker-1)"
        )
    return value


def _juju_model_name(value: str) -> str:
    if not _MODEL_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Juju model name: use lowercase letters, digits and dashes, "
            "starting and ending with a letter or digit"
        )
    return value


AppName = Annotated[str, pydantic.Field(max_length=40), pydantic.AfterValidator(_juju_app_name)]
"""A Juju application name (every dash-separated part has a letter). The names derived from it
are checked by :meth:`Topology._check_derived_names`."""
ModelName = Annotated[
    str, pydantic.Field(max_length=20), pydantic.AfterValidator(_juju_model_name)
]
Units = Annotated[int, pydantic.Field(ge=1, le=20)]


CERTIFICATES_APP = "self-signed-certificates"
"""The certificates provider a ``tls: true`` topology relates the coordinator to."""


class TopologyError(ValueError):
    """The topology file cannot be used; the message is one line naming the field."""


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        """Refuse an unknown field by name, with the known one it most likely meant."""
        if not isinstance(data, dict):
            return data
        known = list(cls.model_fields)
        for key in cast("dict[object, object]", data):
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
                raise ValueError(f"unknown field {str(key)!r}; {hint}")
        return cast("dict[object, object]", data)


class Coordinator(_Strict):
    """The coordinator-k8s application."""

    app: AppName = "coordinator"
    units: Units = 1


class WorkerApp(_Strict):
    """One worker-k8s application and the roles it is configured with (``role-<name>=true``)."""

    app: AppName
    roles: Annotated[list[Literal["all", "read", "write"]], pydantic.Field(min_length=1)]
    units: Units = 1

    @property
    def config(self) -> dict[str, str | int | float | bool]:
        """The charm config that selects exactly these roles (``role-all`` defaults to true)."""
        return {f"role-{role}": role in self.roles for role in ("all", "read", "write")}


class Mesh(_Strict):
    """The ``service-mesh`` relation to istio-beacon-k8s."""

    enabled: bool = True
    beacon: AppName = "istio-beacon-k8s"
    model: ModelName | None = None
    """The beacon's model; the topology's model if not set."""


class Backend(_Strict):
    """A telemetry backend application related to the coordinator."""

    app: AppName
    units: Units = 1
    model: ModelName | None = None
    """Its model; the topology's model if not set (otherwise related across models)."""


class Telemetry(_Strict):
    """Which backends are related: Prometheus (scrape and remote write), Loki, Tempo, Grafana."""

    prometheus: Backend | None = None
    loki: Backend | None = None
    tempo: Backend | None = None
    grafana: Backend | None = None
    """Related on ``grafana-dashboard``: receives the cluster's dashboards."""


class ApiClient(_Strict):
    """An application in the coordinator's model that uses its HTTP API (related on ``api``)."""

    app: AppName
    units: Units = 1


class CrossModelSource(_Strict):
    """An app in another model related to the coordinator through an offer.

    The offer carries both the workload endpoint and ``provide-cmr-mesh``, so the coordinator
    learns the app's real name and model and the mesh policy names them.
    """

    app: AppName
    model: ModelName
    alias: AppName | None = None
    """The remote application's name in the coordinator's model (the SaaS); ``app`` if unset."""
    endpoint: Literal["api", "metrics-endpoint"] = "api"

    @property
    def local_name(self) -> str:
        """How the coordinator's model sees this app."""
        return self.alias or self.app


class Topology(_Strict):
    """A whole deployment around one coordinator."""

    model: ModelName
    coordinator: Coordinator = Coordinator()
    workers: list[WorkerApp] = pydantic.Field(default_factory=lambda: list[WorkerApp]())
    mesh: Mesh = Mesh(enabled=False)
    telemetry: Telemetry = Telemetry()
    api_clients: list[ApiClient] = pydantic.Field(default_factory=lambda: list[ApiClient]())
    cross_model_sources: list[CrossModelSource] = pydantic.Field(
        default_factory=lambda: list[CrossModelSource]()
    )
    tls: bool = False
    """Relate the coordinator to a certificates provider (:data:`CERTIFICATES_APP`, a stand-in
    for self-signed-certificates): https everywhere, and the certificate shared with workers."""

    @pydantic.model_validator(mode="after")
    def _check_names(self) -> Topology:
        seen: dict[str, str] = {}

        def claim(name: str, model: str, field: str) -> None:
            key = f"{model}/{name}"
            if key in seen:
                raise ValueError(f"{field}: app {name!r} is already used by {seen[key]}")
            seen[key] = field

        claim(self.coordinator.app, self.model, "coordinator.app")
        _ = claim(CERTIFICATES_APP, self.model, "tls") if self.tls else None
        for index, worker in enumerate(self.workers):
            claim(worker.app, self.model, f"workers.{index}.app")
        if self.mesh.enabled:
            claim(self.mesh.beacon, self.beacon_model, "mesh.beacon")
        for kind, backend in self.backends().items():
            claim(backend.app, self.model, f"telemetry.{kind}.app")
        for index, client in enumerate(self.api_clients):
            claim(client.app, self.model, f"api_clients.{index}.app")
        for index, source in enumerate(self.cross_model_sources):
            if source.model == self.model:
                raise ValueError(
                    f"cross_model_sources.{index}.model: must differ from the topology's model"
                )
            claim(source.local_name, self.model, f"cross_model_sources.{index}.alias")
        self._check_derived_names()
        units = self.simulated_units
        if units > MAX_UNITS:
            raise ValueError(
                f"{units} units to simulate (coordinator, workers and beacon); the plan runs at "
                f"most {MAX_UNITS}: fewer worker apps or units give the same policies"
            )
        return self

    def _check_derived_names(self) -> None:
        """Labels built from these names must be valid Kubernetes label values (63 characters).

        The beacon asks every meshed pod for ``istio.io/use-waypoint=<model>-<beacon>-waypoint``;
        the coordinator labels its cluster ``app.kubernetes.io/part-of=<coordinator>``.
        """
        derived = {"coordinator.app": {"app.kubernetes.io/part-of": self.coordinator.app}}
        if self.mesh.enabled:
            derived["mesh.beacon"] = charms.beacon_labels(self.mesh.beacon, self.beacon_model)
        for field, labels in derived.items():
            for key, value in labels.items():
                if len(value) > 63:
                    problem = (
                        f"the label {key}={value} would be {len(value)} characters, and "
                        "Kubernetes allows 63 in a label value: use a shorter name"
                    )
                else:
                    problem = label_problem(key, value)
                if problem:
                    raise ValueError(f"{field}: {problem}")

    @property
    def simulated_units(self) -> int:
        """How many units the plan runs through ops.testing."""
        workers = sum(worker.units for worker in self.workers)
        return self.coordinator.units + workers + (1 if self.mesh.enabled else 0)

    @property
    def beacon_model(self) -> str:
        """The model istio-beacon-k8s runs in."""
        return self.mesh.model or self.model

    def backends(self) -> dict[str, Backend]:
        """The related telemetry backends by kind (``prometheus``, ``loki``, ``tempo``, ...)."""
        telemetry = self.telemetry
        found = {
            "prometheus": telemetry.prometheus,
            "loki": telemetry.loki,
            "tempo": telemetry.tempo,
            "grafana": telemetry.grafana,
        }
        return {kind: backend for kind, backend in found.items() if backend is not None}

    def backend_model(self, backend: Backend) -> str:
        """The model a backend runs in."""
        return backend.model or self.model


def model_uuid(model: str) -> str:
    """A fixed UUID per model name, so every run of a plan prints the same thing.

    Shaped as version 4, as Juju's model UUIDs are (cosl refuses others in rule topology).
    """
    return str(
        uuid.UUID(bytes=uuid.uuid5(uuid.NAMESPACE_URL, f"tools.plan/{model}").bytes, version=4)
    )


def load(path: pathlib.Path | None) -> Topology:
    """Read and validate a topology file (the default topology if ``path`` is None).

    Raises:
        TopologyError: the file is unreadable, not YAML, or invalid; one line naming the field.
    """
    path = path or DEFAULT_TOPOLOGY
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise TopologyError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(data) > MAX_FILE_BYTES:
        raise TopologyError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes; not a topology")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TopologyError(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"
        ) from None
    try:
        raw = yaml.safe_load(text)
        return Topology.model_validate(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TopologyError(f"{path}: not valid YAML{where}") from None
    except pydantic.ValidationError as e:
        raise TopologyError(f"{path}: {_first_error(e)}") from None
    except RecursionError:
        raise TopologyError(f"{path}: nested too deeply to be a topology") from None


def _first_error(error: pydantic.ValidationError) -> str:
    """The first problem as ``<field path>: <message>``, on one line."""
    detail = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in detail["loc"])
    message = detail["msg"].removeprefix("Value error, ").replace("\n", " ")
    extra = len(error.errors()) - 1
    more = f" (and {extra} more problem{'s' if extra > 1 else ''})" if extra else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"
