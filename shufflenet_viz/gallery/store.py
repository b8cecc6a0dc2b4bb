"""The class gallery's storage: tables, the engine and the schema migrations.

SQLite in a data folder outside git by default (WAL, so that the projector's reads never wait for a student's
upload; a busy timeout, so that two writers queue instead of failing; secure_delete, so that a deleted photo's
bytes are overwritten in the file), or PostgreSQL when several replicas serve one class
(SHUFFLENET_LENS_GALLERY_DB=postgresql+psycopg://...). Photo bytes live in the database either way, so any
replica serves any photo. Every query reads the database itself: nothing here is cached between calls.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_ENV = "SHUFFLENET_LENS_GALLERY_DB"
DATA_DIR_ENV = "SHUFFLENET_LENS_DATA"
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # ignored by git
DATABASE_FILE = "gallery.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another to finish before giving up


class Base(DeclarativeBase):
    pass


class RoomRow(Base):
    """An open room: its join code (valid while the row exists), the hash of its teacher secret, its settings."""

    __tablename__ = "rooms"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    join_code: Mapped[str] = mapped_column(sa.String(12), unique=True)
    teacher_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[float] = mapped_column(sa.Float)
    expires_at: Mapped[float] = mapped_column(sa.Float, index=True)
    locked: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    moderated: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    left_model: Mapped[str] = mapped_column(sa.String(80))
    right_model: Mapped[str] = mapped_column(sa.String(80))
    student_cap: Mapped[int] = mapped_column(sa.Integer)
    room_cap: Mapped[int] = mapped_column(sa.Integer)
    version: Mapped[int] = mapped_column(sa.Integer, default=0)  # raised by every change the grid shows


class PhotoRow(Base):
    """A student's photo, re-encoded (no metadata), under a random id; the student keeps the delete token."""

    __tablename__ = "photos"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(sa.ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    student: Mapped[str] = mapped_column(sa.String(64))  # a random id kept in the student's session
    delete_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(10))  # "pending", "approved" or "hidden"
    created_at: Mapped[float] = mapped_column(sa.Float)
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    jpeg: Mapped[bytes] = mapped_column(sa.LargeBinary)
    thumbnail: Mapped[bytes] = mapped_column(sa.LargeBinary)


class PredictionRow(Base):
    """One model's top-1 for one photo, computed once."""

    __tablename__ = "predictions"
    photo_id: Mapped[str] = mapped_column(sa.ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True)
    model_name: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(120))
    confidence: Mapped[float] = mapped_column(sa.Float)


class BucketRow(Base):
    """A rate-limit token bucket, shared by every replica: keyed by a hash (no client address is stored)."""

    __tablename__ = "rate_buckets"
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    room_id: Mapped[str | None] = mapped_column(sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=True,
                                                index=True)
    tokens: Mapped[float] = mapped_column(sa.Float)
    updated_at: Mapped[float] = mapped_column(sa.Float, index=True)


TABLES = (RoomRow, PhotoRow, PredictionRow, BucketRow)


def data_dir() -> Path:
    """The folder of the default SQLite database (SHUFFLENET_LENS_DATA, else data/ beside the code)."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def database_url() -> str:
    """SHUFFLENET_LENS_GALLERY_DB, else a SQLite file in the data folder."""
    configured = os.environ.get(DATABASE_ENV, "").strip()
    return configured or f"sqlite:///{data_dir() / DATABASE_FILE}"


def _on_sqlite_connect(connection, _record) -> None:
    cursor = connection.cursor()
    for pragma in ("journal_mode=WAL", f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", "foreign_keys=ON",
                   "secure_delete=ON", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _on_sqlite_begin(connection) -> None:
    # Takes the write lock at the start: a read that later writes would otherwise fail on the upgrade with
    # "database is locked", which the busy timeout does not cover.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | None = None) -> Engine:
    """An engine for this URL (default `database_url()`); a SQLite file's folder is created."""
    url = url or database_url()
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False,
                                                     "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                     "isolation_level": None})
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


_MIGRATE_LOCK = threading.Lock()
MIGRATION_LOCK_KEY = 0x5348554646  # PostgreSQL advisory lock id of the gallery's migrations (any fixed number)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic `upgrade head`, configured here rather than in an ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with _MIGRATE_LOCK, engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # replicas starting together migrate one after the other
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str | None = None) -> Engine:
    """An engine on a database whose schema is current."""
    engine = make_engine(url)
    migrate(engine)
    return engine


def compact(engine: Engine) -> None:
    """Return freed space after a deletion: SQLite moves the WAL's pages (which may still hold deleted bytes)
    into the zeroed main file and empties the WAL; PostgreSQL vacuums the tables that held photos."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in ("photos", "predictions", "rate_buckets", "rooms"):
                connection.exec_driver_sql(f"VACUUM {table}")
