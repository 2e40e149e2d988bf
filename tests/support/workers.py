# Copyright 2026 The coordinated-mesh authors
# SPDX-License-Identifier: Apache-2.0
"""The test worker library tests run: a charm that is only a `Worker` with a given config.

Example::

    Charm = worker_charm(WorkerConfig(container="workload", layer=my_layer))
    ctx = testing.Context(Charm, meta=META, config=CONFIG, app_name="w")
"""

from __future__ import annotations

from typing import ClassVar

import ops

from coordinated_workers._worker import Worker, WorkerConfig


class WorkerTester(ops.CharmBase):
    """A charm that is a `Worker` with its class's `CONFIG` and nothing else.

    Its collect-status shows the worker's problems (the worst one wins), else active, as the
    reference charm does.
    """

    CONFIG: ClassVar[WorkerConfig]

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.worker = Worker(self, self.CONFIG)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        for problem in self.worker.problems:
            event.add_status(problem.status())
        event.add_status(ops.ActiveStatus())


def worker_charm(config: WorkerConfig) -> type[WorkerTester]:
    """A `WorkerTester` class of its own with `config` (ops.testing takes a charm class)."""

    class Charm(WorkerTester):
        CONFIG = config

    return Charm
