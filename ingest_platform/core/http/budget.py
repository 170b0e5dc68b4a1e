"""Persisted per-source call budgets: calls and their cost per UTC day, shared by processes.

A free tier counts every request we send, retries included, so the budget is charged per
attempt, in a SQL store every run shares: a SQLite file on one machine, PostgreSQL (the
instance's database) across machines.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from ingest_platform.core.http.errors import BudgetExhausted, BudgetUnavailable


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


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()
_METADATA = sa.MetaData()
CALL_BUDGET = sa.Table(
    "call_budget",
    _METADATA,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("calls", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
    # Set when the provider itself says the day's quota is spent (whatever we counted).
    sa.Column("exhausted", sa.Boolean, nullable=False, server_default=sa.false()),
)


def budget_engine(url: str) -> Engine:
    """One engine per store URL per process (a SQLite file or a PostgreSQL database)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            kwargs: dict[str, Any] = {}
            if url.startswith("sqlite"):
                # A fresh connection per use: a pooled one would keep writing to a file that
                # was deleted under it ("readonly database") instead of the recreated one.
                kwargs["connect_args"] = {"timeout": 30}
                kwargs["poolclass"] = NullPool
            engine = _ENGINES[url] = sa.create_engine(url, **kwargs)
        return engine


def store_url(location: str | Path) -> str:
    """A budget store URL from a SQLAlchemy URL or a path to a SQLite file."""
    text = str(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


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
        self.url = store_url(location)
        self.daily_limit = daily_limit
        self.cost_per_call = cost_per_call
        self._today = today

    @property
    def where(self) -> str:
        """The store, for messages (without credentials)."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def _ensure(self) -> Engine:
        engine = budget_engine(self.url)
        if engine.dialect.name == "sqlite":
            database = sa.make_url(self.url).database
            if database:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        try:
            _METADATA.create_all(engine, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            # Another process may have created it between our check and our CREATE.
            if not sa.inspect(engine).has_table(CALL_BUDGET.name):
                raise BudgetUnavailable(
                    self.source, f"call budget store {self.where}: {exc}"
                ) from None
        return engine

    def charge(self, calls: int = 1) -> None:
        """Spend `calls` calls, or raise `BudgetExhausted` without spending any."""
        day = self._today().isoformat()
        if self.daily_limit is not None and calls > self.daily_limit:
            raise BudgetExhausted(self.source, f"{calls} calls exceed the daily limit")
        insert = _upsert(self._ensure()).values(
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
        try:
            with self._ensure().begin() as conn:
                spent = conn.execute(update).first()
        except sa.exc.SQLAlchemyError as exc:
            raise BudgetUnavailable(self.source, f"call budget store {self.where}: {exc}") from None
        if spent is None:
            report = self.report()
            raise BudgetExhausted(
                self.source,
                f"daily call budget spent: {report.calls}/{self.daily_limit} calls on {day} (UTC)"
                + (" (the provider said so)" if report.exhausted else ""),
            )

    def mark_exhausted(self) -> None:
        """The provider says today's quota is gone: no more calls until the UTC day turns."""
        day = self._today().isoformat()
        insert = _upsert(self._ensure()).values(
            source=self.source, day=day, calls=0, cost=0.0, exhausted=True
        )
        with self._ensure().begin() as conn:
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["source", "day"], set_={"exhausted": True}
                )
            )

    def remaining(self) -> int | None:
        return self.report().remaining

    def report(self) -> BudgetReport:
        day = self._today().isoformat()
        query = sa.select(CALL_BUDGET.c.calls, CALL_BUDGET.c.cost, CALL_BUDGET.c.exhausted).where(
            (CALL_BUDGET.c.source == self.source) & (CALL_BUDGET.c.day == day)
        )
        with self._ensure().connect() as conn:
            row = conn.execute(query).first()
        calls, cost, exhausted = (row[0], row[1], bool(row[2])) if row else (0, 0.0, False)
        if exhausted:
            remaining: int | None = 0
        else:
            remaining = None if self.daily_limit is None else max(0, self.daily_limit - calls)
        return BudgetReport(self.source, day, calls, cost, self.daily_limit, remaining, exhausted)


def _upsert(engine: Engine) -> Any:
    """The dialect's INSERT … ON CONFLICT construct (SQLite and PostgreSQL share the API)."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(CALL_BUDGET)
    if engine.dialect.name == "sqlite":
        return sqlite.insert(CALL_BUDGET)
    raise ValueError(f"call budgets need SQLite or PostgreSQL, not {engine.dialect.name}")
