"""The warehouse connection: a SQLite file under the data folder by default, PostgreSQL (or
any SQLAlchemy URL) when configured; credentials arrive through the environment."""

from __future__ import annotations

import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr
from sqlalchemy.engine import Engine

from ingest_platform.core import settings


def default_url() -> str:
    path = settings.data_dir() / "warehouse" / "warehouse.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class Warehouse(ConfigurableResource):
    """Where the consolidated datasets are published for SQL users."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: a SQLite file <data dir>/warehouse/warehouse.sqlite. "
        "For PostgreSQL use EnvVar('INGEST_PLATFORM_WAREHOUSE_URL') "
        "(postgresql+psycopg2://user:password@host/db): the password never sits in config.",
    )
    _engine: Engine | None = PrivateAttr(default=None)

    def effective_url(self) -> str:
        return self.url or default_url()

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.effective_url(), future=True)
        return self._engine

    def redacted_url(self) -> str:
        """The URL with its password removed, for metadata and logs."""
        url = sa.make_url(self.effective_url())
        return url.render_as_string(hide_password=True)
