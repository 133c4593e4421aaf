"""The query budget: how many SQL statements one request (or socket unit) may run.

A page must cost a fixed number of statements whatever the number of messages or
rooms it shows; tests that use ``Queries.measure`` fail on an N+1, list the
statements that ran, and can check that a read wrote nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from flask import Flask

from webchat import querylog
from webchat.querylog import Tally

T = TypeVar("T")


def over_budget(tally: Tally, budget: int) -> str:
    listing = "\n".join(f"  {i + 1}. {' '.join(s.split())[:200]}" for i, s in enumerate(tally.statements))
    return f"{tally.name} ran {len(tally.statements)} SQL statements, budget {budget}:\n{listing}"


def check(tally: Tally, budget: int, writes: bool | None = None) -> Tally:
    """Fail when ``tally`` is over ``budget``; ``writes=False``: it must not write or commit."""
    assert len(tally.statements) <= budget, over_budget(tally, budget)
    if writes is False:
        assert not tally.writes and not tally.commits, f"a read wrote:\n{over_budget(tally, budget)}"
    if writes is True:
        assert tally.writes, f"{tally.name} stored nothing"
    return tally


class Queries:
    """Tallies every request of an in-process app (the Flask test client)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.tallies: list[Tally] = []
        querylog.enable(app, self.tallies.append)

    def measure(
        self, budget: int, call: Callable[[], T], writes: bool | None = None, unit: str = ""
    ) -> tuple[T, Tally]:
        """Run ``call`` (one request) and check the statements of its request."""
        start = len(self.tallies)
        result = call()
        units = [t for t in self.tallies[start:] if unit in t.name]
        assert len(units) == 1, f"expected one request, saw {[t.name for t in units]}"
        return result, check(units[0], budget, writes)


def read_log(path: Path) -> list[Tally]:
    """The units a server wrote with QUERY_LOG=path."""
    if not path.exists():
        return []
    tallies = []
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        tallies.append(Tally(data["unit"], data["statements"], data["commits"]))
    return tallies
