"""The metadata catalog: SQLAlchemy on a SQLite file beside the warehouse.

SQLite takes concurrent writers (training and analysis jobs, the indexer) where a DuckDB file
cannot; the indexer copies its tables into the warehouse as `catalog_runs` and
`catalog_schedules` so SQL can join them with results. (DuckDB's sqlite scanner is an
extension that must be downloaded, which this tool does not rely on.)
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, DateTime, Integer, String, create_engine, select
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tdw.errors import CorruptFileError, TdwError


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


class NamedProbe(Base):
    """A named set of inputs (tdw/probes.py): its spec, resolved per run when used."""

    __tablename__ = "probes"
    name: Mapped[str] = mapped_column(String, primary_key=True)
    spec: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String)  # train | analyze | index | sweep
    variant: Mapped[str | None] = mapped_column(String, nullable=True)
    sweep_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    params: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String, default="queued")  # queued running done failed cancelling cancelled
    progress: Mapped[int] = mapped_column(Integer, default=0)  # epochs trained or checkpoints analyzed
    total: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # latest losses, for live curves
    host: Mapped[str | None] = mapped_column(String, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(String, nullable=True)


WAL_ATTEMPTS = 20  # new-catalog races (Catalog._switch_to_wal): at most ~4 s of backing off
JOB_STATES = ("queued", "running", "done", "failed", "cancelling", "cancelled")


def heartbeat_timeout_s() -> float:
    """A running job silent this long has lost its worker (workers beat every 2 s)."""
    return float(os.environ.get("TDW_HEARTBEAT_TIMEOUT", "30"))


class SavedViewRow(Base):
    """A saved view (dashboards/saved_views.py), kept as the TOML text its file holds."""

    __tablename__ = "saved_views"
    name: Mapped[str] = mapped_column(String, primary_key=True)
    toml: Mapped[str] = mapped_column(String)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file


def is_duckdb_file(path: Path) -> bool:
    """Whether `path` starts as a DuckDB database file does, however damaged the rest of it is."""
    with open(path, "rb") as handle:
        return handle.read(12)[8:] == DUCKDB_MAGIC


def refuse_non_warehouse(db: str | Path) -> None:
    """One line where `db` names a file that exists and is not a DuckDB file, so no warehouse
    (`--db results/.../config.json`): it must not be overwritten by an index, nor get a catalog
    beside it. A damaged warehouse still starts as a DuckDB file, and is rebuilt by `tdw index`."""
    db = Path(db)
    if db.is_file() and db.stat().st_size and not is_duckdb_file(db):
        raise TdwError(f"--db {db}: exists and is not a DuckDB file, so not a warehouse: name the warehouse file "
                       "(a new name makes a new one); a warehouse whose header is damaged: delete it and index again")


def catalog_path(db: str | Path) -> Path:
    """The catalog of the warehouse file `db`: beside it (refused beside a file that is no warehouse)."""
    refuse_non_warehouse(db)
    return Path(db).with_name("catalog.sqlite")


def existing_catalog(db: str | Path) -> Catalog | None:
    """The catalog beside `db`, or None where there is none yet: for what only reads it (listing
    jobs, probes or saved views), which must not make a catalog, or its folder, by looking."""
    path = catalog_path(db)
    return Catalog(path) if path.is_file() else None


def no_such_probe(name: str) -> str:
    return f"probe {name!r}: no such probe (tdw probe list)"


def named_probes(db: str | Path) -> dict[str, str]:
    """{name: spec} of the probes named in the catalog beside `db` (none without a catalog)."""
    catalog = existing_catalog(db)
    if catalog is None:
        return {}
    try:
        return catalog.probes()
    finally:
        catalog.dispose()


class Catalog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(f"sqlite:///{self.path}", connect_args={"timeout": 30})
        try:
            self._create_tables()
        except DatabaseError as error:
            if "already exists" in str(error) or "locked" in str(error):
                raise
            self.engine.dispose()
            raise CorruptFileError(self.path, str(error.orig).splitlines()[0] if error.orig else "unreadable",
                                   "move it aside and run `tdw index` (job history is lost; runs and the warehouse are not)") from None

    def _create_tables(self) -> None:
        for attempt in range(WAL_ATTEMPTS):
            try:
                self._switch_to_wal()
                break
            except OperationalError as error:
                if "locked" not in str(error) or attempt == WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))
        for attempt in range(5):  # another process (a sweep, its workers, the dashboard) may create it too
            try:
                Base.metadata.create_all(self.engine)
                break
            except OperationalError as error:
                if "already exists" not in str(error) or attempt == 4:
                    raise

    def _switch_to_wal(self) -> None:
        """WAL mode (readers never block the workers' writes), and an old jobs table dropped.
        Why the caller retries: switching a new file to WAL needs its exclusive lock, and when
        several processes open a new catalog at once, SQLite answers "database is locked" at once
        instead of waiting out the busy timeout when waiting could deadlock (one failure in a CI
        run of six processes; once the file is in WAL the pragma needs no lock)."""
        with self.engine.begin() as connection:
            connection.exec_driver_sql("pragma journal_mode=wal")
            columns = {row[1] for row in connection.exec_driver_sql("pragma table_info(jobs)")}
            if columns and not {c.name for c in Job.__table__.columns} <= columns:
                connection.exec_driver_sql("drop table jobs")  # a catalog from before job tracking

    def run_fingerprints(self) -> dict[str, str]:
        with Session(self.engine) as session:
            return {r.variant: r.fingerprint for r in session.scalars(select(IndexedRun))}

    def record_runs(self, runs: list[dict]) -> None:
        now = datetime.now(UTC)
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

    # --- probes ----------------------------------------------------------------------------
    def probes(self) -> dict[str, str]:
        """{name: spec} of the named probes."""
        with Session(self.engine) as session:
            return {r.name: r.spec for r in session.scalars(select(NamedProbe).order_by(NamedProbe.name))}

    def add_probe(self, name: str, spec: str, replace: bool = False) -> None:
        with Session(self.engine) as session, session.begin():
            existing = session.get(NamedProbe, name)
            if existing is not None and not replace:
                raise TdwError(f"probe {name!r} exists ({existing.spec}); remove it first or pass --replace")
            if existing is not None:
                existing.spec = spec
            else:
                session.add(NamedProbe(name=name, spec=spec, created_at=datetime.now(UTC)))

    def remove_probe(self, name: str) -> None:
        with Session(self.engine) as session, session.begin():
            existing = session.get(NamedProbe, name)
            if existing is None:
                raise TdwError(no_such_probe(name))
            session.delete(existing)


    # --- saved views -----------------------------------------------------------------------
    def saved_views(self) -> dict[str, str]:
        """{name: TOML text} of the saved views."""
        with Session(self.engine) as session:
            return {r.name: r.toml for r in session.scalars(select(SavedViewRow).order_by(SavedViewRow.name))}

    def put_saved_view(self, name: str, toml: str) -> None:
        with Session(self.engine) as session, session.begin():
            existing = session.get(SavedViewRow, name)
            if existing is not None:
                existing.toml, existing.updated_at = toml, datetime.now(UTC)
            else:
                session.add(SavedViewRow(name=name, toml=toml, updated_at=datetime.now(UTC)))

    def remove_saved_view(self, name: str) -> None:
        with Session(self.engine) as session, session.begin():
            existing = session.get(SavedViewRow, name)
            if existing is None:
                raise TdwError(f"saved view {name!r}: no such view (tdw view list)")
            session.delete(existing)

    # --- jobs ------------------------------------------------------------------------------
    def create_job(self, kind: str, params: dict, variant: str | None = None, total: int = 0,
                   sweep_id: int | None = None) -> int:
        with Session(self.engine) as session, session.begin():
            job = Job(kind=kind, params=params, variant=variant, total=total, sweep_id=sweep_id, state="queued",
                      progress=0, created_at=datetime.now(UTC))
            session.add(job)
            session.flush()
            return job.id

    def update_job(self, job_id: int, **fields) -> str:
        """Set fields (and the heartbeat); returns the job's state, so a worker sees a cancel."""
        with Session(self.engine) as session, session.begin():
            job = session.get(Job, job_id)
            if job is None:
                raise KeyError(job_id)
            for key, value in fields.items():
                setattr(job, key, value)
            job.heartbeat_at = datetime.now(UTC)
            return job.state

    def jobs(self, limit: int | None = None) -> list[dict]:
        """Every job, newest first; a running job without a recent heartbeat is marked failed."""
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            query = select(Job).order_by(Job.id.desc())
            if limit:
                query = query.limit(limit)
            rows = list(session.scalars(query))
            for job in rows:
                beat = job.heartbeat_at
                if beat is not None and beat.tzinfo is None:
                    beat = beat.replace(tzinfo=UTC)
                if job.state in ("running", "cancelling") and beat is not None and (now - beat).total_seconds() > heartbeat_timeout_s():
                    job.state = "failed"
                    job.error = f"worker lost: no heartbeat since {beat:%Y-%m-%d %H:%M:%S} UTC (host {job.host}, pid {job.pid})"
                    job.finished_at = now
            return [{c.name: getattr(job, c.name) for c in Job.__table__.columns} for job in rows]

    def cancel_job(self, job_id: int) -> str:
        with Session(self.engine) as session, session.begin():
            job = session.get(Job, job_id)
            if job is None:
                raise KeyError(job_id)
            if job.state == "queued":
                job.state = "cancelled"
                job.finished_at = datetime.now(UTC)
            elif job.state == "running":
                job.state = "cancelling"  # the worker stops at its next heartbeat
            return job.state
