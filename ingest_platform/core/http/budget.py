"""Persisted per-source call budgets: calls and their cost per UTC day, shared by processes.

A free tier counts every request we send, retries included, so the budget is charged per
attempt, in a SQL store every run shares: a SQLite file on one machine, PostgreSQL (the
instance's database) across machines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ingest_platform.core.http import store
from ingest_platform.core.http.errors import BudgetExhausted, BudgetUnavailable
from ingest_platform.core.http.store import CALL_BUDGET, upsert

T = TypeVar("T")


@dataclass(frozen=True)
class BudgetReport:
    source: str
    day: str
    calls: int
    cost: float
    limit: int | None
    remaining: int | None
    exhausted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "day": self.day,
            "calls": self.calls,
            "cost": round(self.cost, 6),
            "limit": self.limit,
            "remaining": self.remaining,
            "exhausted": self.exhausted,
        }


class CallBudget:
    """Calls (and their cost) per source per UTC day, in a SQL store shared by every process.

    The store is a SQLite file on one machine, or the instance's PostgreSQL database when runs
    spread over machines. Spending is one atomic statement (an upsert that only applies while
    the limit holds), so two runs cannot both spend the last call of a free tier. The table is
    (re)created on demand: a store deleted mid-run is recreated, never a lost run.
    """

    def __init__(
        self,
        source: str,
        location: str | Path,
        daily_limit: int | None = None,
        cost_per_call: float = 0.0,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self.source = source
        self.url = store.store_url(location)
        self.daily_limit = daily_limit
        self.cost_per_call = cost_per_call
        self._today = today

    @property
    def where(self) -> str:
        """The store, for messages (without credentials)."""
        return store.describe(self.url)

    def _transact(self, work: Callable[[Connection], T]) -> T:
        try:
            return store.transact(self.url, work)
        except store.StoreUnavailable as exc:
            raise BudgetUnavailable(self.source, f"call budget store {exc}") from None

    def charge(self, calls: int = 1) -> None:
        """Spend `calls` calls, or raise `BudgetExhausted` without spending any."""
        day = self._today().isoformat()
        if self.daily_limit is not None and calls > self.daily_limit:
            raise BudgetExhausted(self.source, f"{calls} calls exceed the daily limit")

        def spend(conn: Connection) -> Any:
            insert = upsert(conn, CALL_BUDGET).values(
                source=self.source, day=day, calls=calls, cost=calls * self.cost_per_call
            )
            update = insert.on_conflict_do_update(
                index_elements=["source", "day"],
                set_={
                    "calls": CALL_BUDGET.c.calls + insert.excluded.calls,
                    "cost": CALL_BUDGET.c.cost + insert.excluded.cost,
                },
                where=sa.not_(CALL_BUDGET.c.exhausted)
                & (
                    sa.true()
                    if self.daily_limit is None
                    else CALL_BUDGET.c.calls + insert.excluded.calls <= self.daily_limit
                ),
            ).returning(CALL_BUDGET.c.calls)
            return conn.execute(update).first()

        if self._transact(spend) is None:
            report = self.report()
            raise BudgetExhausted(
                self.source,
                f"daily call budget spent: {report.calls}/{self.daily_limit} calls on {day} (UTC)"
                + (" (the provider said so)" if report.exhausted else ""),
            )

    def mark_exhausted(self) -> None:
        """The provider says today's quota is gone: no more calls until the UTC day turns."""
        day = self._today().isoformat()

        def close_day(conn: Connection) -> None:
            insert = upsert(conn, CALL_BUDGET).values(
                source=self.source, day=day, calls=0, cost=0.0, exhausted=True
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["source", "day"], set_={"exhausted": True}
                )
            )

        self._transact(close_day)

    def remaining(self) -> int | None:
        return self.report().remaining

    def report(self) -> BudgetReport:
        day = self._today().isoformat()
        query = sa.select(CALL_BUDGET.c.calls, CALL_BUDGET.c.cost, CALL_BUDGET.c.exhausted).where(
            (CALL_BUDGET.c.source == self.source) & (CALL_BUDGET.c.day == day)
        )
        row = self._transact(lambda conn: conn.execute(query).first())
        calls, cost, exhausted = (row[0], row[1], bool(row[2])) if row else (0, 0.0, False)
        if exhausted:
            remaining: int | None = 0
        else:
            remaining = None if self.daily_limit is None else max(0, self.daily_limit - calls)
        return BudgetReport(self.source, day, calls, cost, self.daily_limit, remaining, exhausted)
