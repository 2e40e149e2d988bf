# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""Cheaper test machinery while a plan runs its hooks; the charms' own code is left alone.

A 500-app plan runs 1,506 hooks. In each, ops.testing writes the charm's metadata, config and
actions out as YAML and ops parses them back, the lightkube clients the charms build parse
the same kubeconfig, and ops sets up its tracing, which has OpenTelemetry work out the
process's resource attributes in a new thread pool. None of that is the charms' logic, yet
it is about a third of the plan's time; :func:`quicker_machinery` makes it cheaper without
changing any result:

- ops.testing and lightkube's kubeconfig reader get PyYAML's libyaml (C) ``safe_dump`` and
  ``safe_load`` (the same representer, constructor and resolver around a C emitter and
  parser); only those modules, so the charms and the libraries keep the YAML they call
  themselves. Without libyaml they keep PyYAML's pure-Python one.
- The same text is parsed once: ops' own loader and the one above hand out a deep copy of
  what the text gave the first time (the metadata files and the kubeconfig are the same text
  in every hook). A dump of a value dumped before is the text it gave then.
- OpenTelemetry's resource detection runs once per set of detectors and ``OTEL_*``
  environment, for the built-in detectors, whose result depends on nothing else (a
  per-process instance id, the ``OTEL_*`` variables); any other detector runs every time.

Anything not found where expected is left as it is, and everything is put back afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import os
import types
from typing import TYPE_CHECKING, Any, cast

import yaml

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Sequence

YAML_USERS = ("scenario._runtime", "scenario.state", "lightkube.config.kubeconfig")
"""The modules whose ``yaml`` is switched: ops.testing's metadata files and Pebble plans, and
lightkube's kubeconfig reader."""
KEPT = 64
"""How many texts (and dumped values) each memo keeps: a plan repeats a handful, many times."""
_PLAIN_LEAVES = (str, int, float, bool, type(None))


@contextlib.contextmanager
def quicker_machinery() -> Generator[None, None, None]:
    """While the block runs, ops.testing, ops, lightkube and OpenTelemetry do less per hook."""
    with libyaml_for(YAML_USERS), ops_parses_once(), resource_detection_once():
        yield


def parsed_once(load: Callable[[str], Any]) -> Callable[[str], Any]:
    """``load``, run once per text (of the last :data:`KEPT`); each call gets its own copy.

    A deep copy of what ``load`` built is what ``load`` would build again: the same types, and
    the same sharing where the YAML has aliases.
    """
    first = functools.lru_cache(maxsize=KEPT)(load)
    return lambda text: copy.deepcopy(first(text))


class LibYAML(types.ModuleType):
    """``yaml`` as a module in :data:`YAML_USERS` sees it: C ``safe_dump`` and ``safe_load``.

    Every other name is PyYAML's own.
    """

    def __init__(self) -> None:
        super().__init__("yaml")
        self._dumped: dict[str, str] = {}
        self._parse = parsed_once(self._c_load)

    def __getattr__(self, name: str) -> Any:
        return getattr(yaml, name)

    def safe_dump(self, data: Any, stream: Any = None, **kwds: Any) -> Any:
        """``yaml.safe_dump`` with the C emitter; a plain value dumped before gives its text."""
        if stream is not None or kwds:
            dump: Callable[..., Any] = yaml.dump_all
            return dump([data], stream, Dumper=yaml.CSafeDumper, **kwds)
        # The repr of a value made only of dicts, lists and scalars of exactly these types
        # spells out its types, values and key order: equal reprs dump to equal text.
        key = repr(data) if _plain(data) else None
        text = self._dumped.get(key) if key is not None else None
        if text is None:
            text = yaml.dump_all([data], Dumper=yaml.CSafeDumper)
            if key is not None and len(self._dumped) < KEPT:
                self._dumped[key] = text
        return text

    def safe_load(self, stream: Any) -> Any:
        """``yaml.safe_load`` with the C parser, each text parsed once."""
        return self._parse(stream) if isinstance(stream, str) else self._c_load(stream)

    @staticmethod
    def _c_load(stream: Any) -> Any:
        return yaml.load(stream, Loader=yaml.CSafeLoader)


def _plain(data: object) -> bool:
    kind = type(data)
    if kind is dict:
        items = cast("dict[object, object]", data).items()
        return all(_plain(key) and _plain(value) for key, value in items)
    if kind is list:
        return all(_plain(value) for value in cast("list[object]", data))
    return kind in _PLAIN_LEAVES


@contextlib.contextmanager
def libyaml_for(module_names: Sequence[str]) -> Generator[None, None, None]:
    """Give each module in ``module_names`` that uses ``yaml`` a :class:`LibYAML` instead.

    Does nothing without libyaml; skips a module that is missing or does not use ``yaml``.
    """
    if not getattr(yaml, "__with_libyaml__", False):
        yield
        return
    routed = LibYAML()
    switched: list[types.ModuleType] = []
    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "yaml", None) is yaml:
            module.yaml = routed  # pyright: ignore[reportAttributeAccessIssue]
            switched.append(module)
    try:
        yield
    finally:
        for module in switched:
            module.yaml = yaml  # pyright: ignore[reportAttributeAccessIssue]


@contextlib.contextmanager
def ops_parses_once() -> Generator[None, None, None]:
    """Each text given to ops' own YAML loader is parsed once; see :func:`parsed_once`.

    ops parses the metadata, actions and config files in every hook, and the metadata again
    for its tracing. Calls with another loader or a stream go through unchanged.
    """
    try:
        ops_yaml = importlib.import_module("ops._private.yaml")
    except ImportError:
        yield
        return
    load: Callable[..., Any] | None = getattr(ops_yaml, "safe_load", None)
    if load is None:
        yield
        return
    parse = parsed_once(load)

    def safe_load(stream: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(stream, str) and not args and not kwargs:
            return parse(stream)
        return load(stream, *args, **kwargs)

    ops_yaml.safe_load = safe_load  # pyright: ignore[reportAttributeAccessIssue]
    try:
        yield
    finally:
        ops_yaml.safe_load = load  # pyright: ignore[reportAttributeAccessIssue]


@contextlib.contextmanager
def resource_detection_once() -> Generator[None, None, None]:
    """OpenTelemetry's built-in resource detectors run once, not in every hook.

    ``Resource.create`` (which ops' tracing calls in every hook) runs the detectors in a new
    thread pool each time, though the built-in two find the same in the whole process. Does
    nothing without the OpenTelemetry SDK or when it no longer has these names.
    """
    try:
        resources = importlib.import_module("opentelemetry.sdk.resources")
    except ImportError:
        yield
        return
    detect: Callable[..., Any] | None = getattr(resources, "get_aggregated_resources", None)
    built_in = {
        getattr(resources, name, None)
        for name in ("ServiceInstanceIdResourceDetector", "OTELResourceDetector")
    }
    if detect is None or None in built_in:
        yield
        return
    found: dict[tuple[object, ...], tuple[object, Any]] = {}

    def detect_once(
        detectors: Sequence[object], initial_resource: Any = None, timeout: int = 5
    ) -> Any:
        kinds = tuple(type(detector) for detector in detectors)
        if not set(kinds) <= built_in:
            return detect(detectors, initial_resource, timeout)
        otel = sorted(item for item in os.environ.items() if item[0].startswith("OTEL_"))
        key = (kinds, id(initial_resource), timeout, tuple(otel))
        seen = found.get(key)
        if seen is None or seen[0] is not initial_resource:  # the id of a resource since collected
            seen = found[key] = (
                initial_resource,
                detect(detectors, initial_resource, timeout),
            )
        return seen[1]

    resources.get_aggregated_resources = detect_once  # pyright: ignore[reportAttributeAccessIssue]
    try:
        yield
    finally:
        resources.get_aggregated_resources = detect  # pyright: ignore[reportAttributeAccessIssue]
