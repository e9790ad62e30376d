"""The metadata catalog: SQLAlchemy on a SQLite file beside the warehouse.

SQLite takes concurrent writers (training and analysis jobs, the indexer) where a DuckDB file
cannot; the indexer copies its tables into the warehouse as `catalog_runs` and
`catalog_schedules` so SQL can join them with results. (DuckDB's sqlite scanner is an
extension that must be downloaded, which this tool does not rely on.)
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import JSON, DateTime, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class IndexedRun(Base):
    __tablename__ = "runs"
    variant: Mapped[str] = mapped_column(String, primary_key=True)
    family: Mapped[str] = mapped_column(String)
    path: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    fingerprint: Mapped[str] = mapped_column(String)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NamedSchedule(Base):
    __tablename__ = "schedules"
    name: Mapped[str] = mapped_column(String, primary_key=True)
    spec: Mapped[dict] = mapped_column(JSON)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String)  # train | analyze | index | sweep
    params: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String, default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String, nullable=True)


class Catalog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(f"sqlite:///{self.path}", connect_args={"timeout": 30})
        Base.metadata.create_all(self.engine)

    def run_fingerprints(self) -> dict[str, str]:
        with Session(self.engine) as session:
            return {r.variant: r.fingerprint for r in session.scalars(select(IndexedRun))}

    def record_runs(self, runs: list[dict]) -> None:
        now = datetime.now(timezone.utc)
        with Session(self.engine) as session, session.begin():
            session.query(IndexedRun).delete()
            session.add_all(IndexedRun(indexed_at=now, **r) for r in runs)

    def rows(self, table: type[Base]) -> list[dict]:
        with Session(self.engine) as session:
            return [
                {c.name: getattr(obj, c.name) for c in table.__table__.columns}
                for obj in session.scalars(select(table))
            ]

    def dispose(self) -> None:
        self.engine.dispose()
