"""Rooms without accounts: a teacher secret (128 random bits, only its sha256 stored) and a short join code
(random, valid only while the room is open), expiry, locking, moderation, and ending a room with everything in it.

The join code and the teacher secret are drawn independently from `secrets`, so neither says anything about the
other; rooms past their expiry are deleted on every open and every code lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from . import limits
from .store import BucketRow, PhotoRow, PredictionRow, RoomRow, compact

# No 0/O, 1/I/L: a code read off a projector is typed without a doubt. 31**6 ~ 887 million codes.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
ROOM_LIFETIME_S = 24 * 3600
TEACHER_SECRET_BYTES = 16  # 128 bits
STUDENT_CAP = 5  # photos per student
ROOM_CAP = 200  # photos per room
CODE_TRIES = 20  # draws of a join code before giving up (a clash needs thousands of open rooms)


class RoomError(ValueError):
    """A room action that cannot be done; the message says why, for the user."""


@dataclass(frozen=True)
class Room:
    """An open room as the app shows it (nothing here is secret but the code, which is meant to be shown)."""

    id: str
    join_code: str
    created_at: float
    expires_at: float
    locked: bool
    moderated: bool
    models: tuple[str, str]
    student_cap: int
    room_cap: int
    version: int


@dataclass(frozen=True)
class OpenedRoom:
    """A new room and its teacher secret, which exists only here and in the teacher's link."""

    room: Room
    teacher_secret: str


@dataclass(frozen=True)
class CodeLookup:
    """The answer to a typed join code: the room, or None with the same message for every code that opens no
    room (unknown, ended, expired, malformed), and how long to wait before answering or trying again."""

    room: Room | None
    message: str | None
    delay_s: float


NO_ROOM_MESSAGE = "No open room has this code. Check the code on the projector and type it again."
TOO_MANY_MESSAGE = "Too many codes tried from here. Wait {seconds} s, then type the code again."


def _room(row) -> Room:
    return Room(row.id, row.join_code, row.created_at, row.expires_at, bool(row.locked), bool(row.moderated),
                (row.left_model, row.right_model), row.student_cap, row.room_cap, row.version)


def secret_hash(secret: str) -> str:
    """The stored form of a teacher secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_join_code() -> str:
    """A random join code of CODE_LENGTH characters from CODE_ALPHABET."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str | None:
    """A typed code as stored (upper case, without spaces or dashes), or None when it cannot be a code."""
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(letter not in CODE_ALPHABET for letter in code):
        return None
    return code


def purge_expired(engine: Engine, now: float | None = None) -> int:
    """Delete every room past its expiry with all it holds; returns how many rooms went."""
    now = time.time() if now is None else now
    with engine.begin() as connection:
        expired = connection.execute(sa.select(RoomRow.id).where(RoomRow.expires_at <= now)).scalars().all()
        for room_id in expired:
            _delete_room(connection, room_id)
    limits.forget_idle_buckets(engine, now)
    if expired:
        compact(engine)
    return len(expired)


def open_room(engine: Engine, models: tuple[str, str], now: float | None = None,
              lifetime_s: float = ROOM_LIFETIME_S, moderated: bool = True) -> OpenedRoom:
    """Open a room comparing these two models: a fresh join code and teacher secret."""
    now = time.time() if now is None else now
    purge_expired(engine, now)
    secret = secrets.token_urlsafe(TEACHER_SECRET_BYTES)
    for _ in range(CODE_TRIES):
        row = dict(id=secrets.token_hex(16), join_code=new_join_code(), teacher_hash=secret_hash(secret),
                   created_at=now, expires_at=now + lifetime_s, locked=False, moderated=moderated,
                   left_model=models[0], right_model=models[1], student_cap=STUDENT_CAP, room_cap=ROOM_CAP,
                   version=0)
        try:
            with engine.begin() as connection:
                connection.execute(sa.insert(RoomRow).values(**row))
        except IntegrityError:  # the code is taken by an open room: draw another
            continue
        return OpenedRoom(_room(SimpleNamespace(**row)), secret)
    raise RoomError("No free join code was found; end an unused room and try again.")


def room_for_teacher(engine: Engine, secret: str, now: float | None = None) -> Room | None:
    """The open room whose teacher secret this is, or None."""
    now = time.time() if now is None else now
    with engine.begin() as connection:
        row = connection.execute(sa.select(RoomRow).where(RoomRow.teacher_hash == secret_hash(secret),
                                                          RoomRow.expires_at > now)).first()
    return _room(row) if row else None


def room_by_id(engine: Engine, room_id: str, now: float | None = None) -> Room | None:
    """The open room with this id, or None when it ended or expired."""
    now = time.time() if now is None else now
    with engine.begin() as connection:
        row = connection.execute(sa.select(RoomRow).where(RoomRow.id == room_id, RoomRow.expires_at > now)).first()
    return _room(row) if row else None


def look_up_code(engine: Engine, typed: str, client: str, now: float | None = None) -> CodeLookup:
    """The room a typed join code opens, rate limited per client: every lookup takes a token of CODE_LOOKUPS,
    every miss one of WRONG_CODES and is answered WRONG_CODE_DELAY_S late; with either bucket empty no code is
    checked at all, so a client guessing codes learns nothing more than one guess per 10 s."""
    now = time.time() if now is None else now
    wait = max(limits.wait_for(engine, "wrong-code", client, limits.WRONG_CODES, now),
               limits.take(engine, "code", client, limits.CODE_LOOKUPS, now))
    if wait > 0:
        seconds = max(1, round(wait))
        return CodeLookup(None, TOO_MANY_MESSAGE.format(seconds=seconds), limits.WRONG_CODE_DELAY_S)
    purge_expired(engine, now)
    code = normalise_code(typed)
    row = None
    if code is not None:
        with engine.begin() as connection:
            row = connection.execute(sa.select(RoomRow).where(RoomRow.join_code == code,
                                                              RoomRow.expires_at > now)).first()
    if row is None:
        limits.take(engine, "wrong-code", client, limits.WRONG_CODES, now)
        return CodeLookup(None, NO_ROOM_MESSAGE, limits.WRONG_CODE_DELAY_S)
    return CodeLookup(_room(row), None, 0.0)


def bump_version(connection, room_id: str) -> None:
    """Raise the room's version within this transaction: the grid redraws on the change."""
    connection.execute(sa.update(RoomRow).where(RoomRow.id == room_id).values(version=RoomRow.version + 1))


def set_locked(engine: Engine, room_id: str, locked: bool) -> None:
    """Lock the room against new photos, or open it again."""
    with engine.begin() as connection:
        connection.execute(sa.update(RoomRow).where(RoomRow.id == room_id).values(locked=locked))
        bump_version(connection, room_id)


def set_moderated(engine: Engine, room_id: str, moderated: bool) -> None:
    """Whether new photos wait for the teacher's approval (on by default) or appear at once."""
    with engine.begin() as connection:
        connection.execute(sa.update(RoomRow).where(RoomRow.id == room_id).values(moderated=moderated))
        bump_version(connection, room_id)


def room_version(engine: Engine, room_id: str) -> int | None:
    """The room's version (raised by every change the grid shows), or None when the room is gone."""
    with engine.begin() as connection:
        return connection.execute(sa.select(RoomRow.version).where(RoomRow.id == room_id)).scalar()


def _delete_room(connection, room_id: str) -> None:
    # Explicit, child tables first: a database without enforced foreign keys keeps nothing either.
    photo_ids = sa.select(PhotoRow.id).where(PhotoRow.room_id == room_id).scalar_subquery()
    connection.execute(sa.delete(PredictionRow).where(PredictionRow.photo_id.in_(photo_ids)))
    connection.execute(sa.delete(PhotoRow).where(PhotoRow.room_id == room_id))
    connection.execute(sa.delete(BucketRow).where(BucketRow.room_id == room_id))
    connection.execute(sa.delete(RoomRow).where(RoomRow.id == room_id))


def end_room(engine: Engine, room_id: str) -> None:
    """End the room: its code stops working and every photo, prediction and bucket of it is deleted."""
    with engine.begin() as connection:
        _delete_room(connection, room_id)
    compact(engine)
