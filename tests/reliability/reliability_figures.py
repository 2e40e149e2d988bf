"""The fuzz figures: per endpoint, cases tried, uncaught exceptions, last good state kept."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator


@dataclasses.dataclass
class _Tally:
    cases: int = 0
    uncaught: int = 0
    kept: int = 0


@dataclasses.dataclass
class Figures:
    """Counters filled by the fuzz tests and printed in the terminal summary."""

    tallies: dict[str, _Tally] = dataclasses.field(default_factory=dict)

    @contextlib.contextmanager
    def case(self, endpoint: str) -> Iterator[_Tally]:
        """Count one case; an exception escaping it is an uncaught exception (and re-raised)."""
        tally = self.tallies.setdefault(endpoint, _Tally())
        tally.cases += 1
        try:
            yield tally
        except AssertionError:
            raise
        except Exception:
            tally.uncaught += 1
            raise

    def any(self) -> bool:
        return bool(self.tallies)

    def table(self) -> list[str]:
        width = max(len(name) for name in self.tallies)
        lines = [f"{'endpoint':<{width}}  {'cases':>7}  {'uncaught':>8}  {'last good kept':>14}"]
        for name, tally in sorted(self.tallies.items()):
            lines.append(
                f"{name:<{width}}  {tally.cases:>7}  {tally.uncaught:>8}  {tally.kept:>14}"
            )
        total = _Tally(
            sum(t.cases for t in self.tallies.values()),
            sum(t.uncaught for t in self.tallies.values()),
            sum(t.kept for t in self.tallies.values()),
        )
        lines.append(
            f"{'total':<{width}}  {total.cases:>7}  {total.uncaught:>8}  {total.kept:>14}"
        )
        return [*lines, *LEGEND]


LEGEND = (
    "endpoint: the relation whose remote databag was replaced by hostile data (the pure parser",
    "  the charm calls and whole charm hooks through ops.testing are both counted under it)",
    "cases: hostile databags tried (one parser call or one hook each)",
    "uncaught: exceptions that escaped the parser or the hook (must be 0: any fails its test)",
    "last good kept: cases after which the parser had returned or raised only its documented",
    "  error, or the hook had raised nothing and left pod labels, policies and the workload as",
    "  they were. Data that turned out usable is acted upon, as it should be, and counted in",
    "  cases only, so cases - kept = the usable ones (a case that failed stops its test)",
)


FIGURES = Figures()
