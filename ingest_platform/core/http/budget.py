"""Persisted per-source call budgets: calls and their cost per UTC day, in SQLite.

A free tier counts every request we send, retries included, so the budget is charged per
attempt. SQLite gives an atomic check-and-increment across threads *and* processes (concurrent
runs, the sensor), so two runs cannot both spend the last call of a free tier.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest_platform.core.http.errors import BudgetExhausted


@dataclass(frozen=True)
class BudgetReport:
    source: str
    day: str
    calls: int
    cost: float
    limit: int | None
    remaining: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "day": self.day,
            "calls": self.calls,
            "cost": round(self.cost, 6),
            "limit": self.limit,
            "remaining": self.remaining,
        }


class CallBudget:
    """Calls (and their cost) per source per UTC day, persisted in SQLite.

    SQLite gives atomic check-and-increment across threads *and* processes (concurrent runs,
    the sensor), so two runs cannot both spend the last call of a free tier.
    """

    def __init__(
        self,
        source: str,
        path: str | Path,
        daily_limit: int | None = None,
        cost_per_call: float = 0.0,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self.source = source
        self.path = Path(path)
        self.daily_limit = daily_limit
        self.cost_per_call = cost_per_call
        self._today = today
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS call_budget ("
                " source TEXT NOT NULL, day TEXT NOT NULL, calls INTEGER NOT NULL,"
                " cost REAL NOT NULL, PRIMARY KEY (source, day))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def charge(self, calls: int = 1) -> None:
        """Spend `calls` calls, or raise `BudgetExhausted` without spending any."""
        day = self._today().isoformat()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT calls FROM call_budget WHERE source = ? AND day = ?", (self.source, day)
            ).fetchone()
            used = row[0] if row else 0
            if self.daily_limit is not None and used + calls > self.daily_limit:
                conn.execute("ROLLBACK")
                raise BudgetExhausted(
                    self.source,
                    f"daily call budget spent: {used}/{self.daily_limit} calls on {day} (UTC)",
                )
            conn.execute(
                "INSERT INTO call_budget (source, day, calls, cost) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, day) DO UPDATE SET calls = calls + excluded.calls, "
                "cost = cost + excluded.cost",
                (self.source, day, calls, calls * self.cost_per_call),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def remaining(self) -> int | None:
        return self.report().remaining

    def report(self) -> BudgetReport:
        day = self._today().isoformat()
        with self._connect() as conn:
            row = conn.execute(
                "SELECT calls, cost FROM call_budget WHERE source = ? AND day = ?",
                (self.source, day),
            ).fetchone()
        calls, cost = row if row else (0, 0.0)
        remaining = None if self.daily_limit is None else max(0, self.daily_limit - calls)
        return BudgetReport(self.source, day, calls, cost, self.daily_limit, remaining)
