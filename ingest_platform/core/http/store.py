"""The SQL store that call budgets and rate-limit state share between processes and machines.

One implementation over SQLAlchemy serves both back ends, because what differs between them is
small and local: the INSERT … ON CONFLICT construct (same API, dialect-specific class) and the
clock (PostgreSQL's, so machines with drifting clocks still agree; the local one for a SQLite
file, which only processes of one machine can share). Two hand-written implementations would
duplicate every statement to vary those two lines.

- SQLite: a file under the data folder, the embedded default. Connections are not pooled, so a
  file deleted mid-run is recreated rather than written through a stale handle.
- PostgreSQL: the Dagster instance's own database when the instance is PostgreSQL (see
  `core.instance.shared_store_url`), so runs on different machines draw from one budget and
  one rate limit.

Tables are created on demand and re-created when they vanish (an operator deleting the SQLite
file mid-run): a lost store costs its counts, never the rows a run already fetched. When the
store cannot be created at all, `StoreUnavailable` names it (never with its password).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

T = TypeVar("T")
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()
#: Stores whose tables this process has created or seen (checked again only after an error).
_READY: set[str] = set()
METADATA = sa.MetaData()

CALL_BUDGET = sa.Table(
    "call_budget",
    METADATA,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("calls", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.Float, nullable=False),
    # Set when the provider itself says the day's quota is spent (whatever we counted).
    sa.Column("exhausted", sa.Boolean, nullable=False, server_default=sa.false()),
)

#: One row per rate-limited source: the row every limiter of that source locks before it reads
#: and extends the grant log, so two processes never both take the last slot of a window.
RATE_LIMIT_SOURCE = sa.Table(
    "rate_limit_source",
    METADATA,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("grants", sa.BigInteger, nullable=False, server_default="0"),
)

#: Every call granted in the longest window still open (older grants are pruned on the way).
RATE_LIMIT_GRANT = sa.Table(
    "rate_limit_grant",
    METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("granted_at", sa.Float, nullable=False),  # seconds since the epoch, store's clock
    sa.Index("rate_limit_grant_by_source", "source", "granted_at"),
)


class StoreUnavailable(Exception):
    """The store cannot be reached or created; the message names it (password hidden)."""


def store_url(location: str | Path) -> str:
    """A store URL from a SQLAlchemy URL or a path to a SQLite file."""
    text = str(location)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).resolve()}"


def describe(url: str) -> str:
    """The store for messages and logs: its URL without credentials."""
    return sa.make_url(url).render_as_string(hide_password=True)


def engine_for(url: str) -> Engine:
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
            else:
                kwargs["pool_pre_ping"] = True  # a server restart must not fail the next call
            engine = _ENGINES[url] = sa.create_engine(url, **kwargs)
        return engine


def ensure(url: str) -> Engine:
    """The store's engine, its tables created (again) if missing."""
    engine = engine_for(url)
    if engine.dialect.name not in ("sqlite", "postgresql"):
        raise StoreUnavailable(
            f"{describe(url)}: budgets and rate limits need SQLite or PostgreSQL, "
            f"not {engine.dialect.name}"
        )
    try:
        if engine.dialect.name == "sqlite":
            database = sa.make_url(url).database
            if database:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        METADATA.create_all(engine, checkfirst=True)
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        # Another process may have created them between our check and our CREATE.
        try:
            present = set(sa.inspect(engine).get_table_names())
        except sa.exc.SQLAlchemyError:
            present = set()
        if not set(METADATA.tables) <= present:
            raise StoreUnavailable(f"{describe(url)}: {_reason(exc)}") from None
    return engine


def transact(url: str, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction on the store at `url`, and return what it returns.

    Tables are created the first time a process uses a store. When a statement fails (the
    SQLite file was deleted, a table dropped, the server restarted), the tables are ensured
    again and `work` runs once more: its transaction rolled back, so the retry is safe. A
    second failure raises `StoreUnavailable` naming the store.
    """
    for attempt in (1, 2):
        engine = engine_for(url) if url in _READY and attempt == 1 else ensure(url)
        _READY.add(url)
        try:
            with engine.begin() as conn:
                return work(conn)
        except sa.exc.DBAPIError as exc:
            if attempt == 2:
                raise StoreUnavailable(f"{describe(url)}: {_reason(exc)}") from None
    raise AssertionError("unreachable")


def upsert(engine: Engine | Connection, table: sa.Table) -> Any:
    """The dialect's INSERT … ON CONFLICT construct (SQLite and PostgreSQL share the API)."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def clock(conn: Connection) -> float:
    """Now, in seconds since the epoch, on the store's clock: PostgreSQL's when the store is
    shared across machines (their own clocks may drift apart), this machine's for SQLite."""
    if conn.dialect.name == "postgresql":
        now = conn.execute(sa.text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
        return float(now)
    return time.time()


def _reason(exc: BaseException) -> str:
    """The error's first line (SQLAlchemy appends the statement and a link)."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
