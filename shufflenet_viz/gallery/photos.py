"""Students' photos: re-encoded on arrival (every metadata block dropped, location included; at most MAX_SIDE
pixels), stored under a random id with the hash of the student's delete token; moderation; each room model's
top-1 computed once per photo and stored.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ..images import ImageError, load_image
from ..inference import classify
from ..weights import LoadedModel
from .rooms import Room, bump_version
from .store import PhotoRow, PredictionRow, RoomRow

MAX_SIDE = 1024  # more than any model looks at (224 px), little enough to keep a class's photos small
THUMBNAIL_SIDE = 320  # a grid cell on the projector
JPEG_QUALITY = 85
PENDING, APPROVED, HIDDEN = "pending", "approved", "hidden"
STATUSES = (PENDING, APPROVED, HIDDEN)


class PhotoError(ValueError):
    """A photo that cannot be added; the message says why and what to do, for the student."""


@dataclass(frozen=True)
class Reencoded:
    """A photo as stored: a fresh JPEG made from the pixels alone, and a thumbnail."""

    jpeg: bytes
    thumbnail: bytes
    width: int
    height: int


@dataclass(frozen=True)
class AddedPhoto:
    """A stored photo's id and the token that lets its student delete it (kept in the student's session only)."""

    photo_id: str
    delete_token: str
    status: str


@dataclass(frozen=True)
class Photo:
    """A photo as the grid and the queue show it (without its bytes): status and each model's top-1."""

    id: str
    status: str
    created_at: float
    width: int
    height: int
    predictions: Mapping[str, tuple[str, float]]  # model name -> (label, confidence)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    # A new image from the pixel array carries no info dict: no EXIF (GPS), ICC, XMP or comment is written.
    Image.fromarray(np.asarray(image.convert("RGB"))).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def reencode(data: bytes, name: str = "The photo") -> Reencoded:
    """Decode an untrusted file (upright, RGB, first frame; refusals as `images.load_image` words them) and
    encode its pixels again as a JPEG of at most MAX_SIDE pixels, with a THUMBNAIL_SIDE thumbnail."""
    try:
        loaded = load_image(data, name)
    except ImageError as error:
        raise PhotoError(str(error)) from None
    image = loaded.image.copy()
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    small = image.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    return Reencoded(_jpeg(image), _jpeg(small), image.width, image.height)


def token_hash(token: str) -> str:
    """The stored form of a student's delete token."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_photo(engine: Engine, room_id: str, student: str, data: bytes, name: str = "The photo",
              now: float | None = None) -> AddedPhoto:
    """Re-encode and store a student's photo: pending when the room is moderated, else approved at once.
    Refused (PhotoError) when the room is gone or locked, or the student's or the room's cap is reached."""
    now = time.time() if now is None else now
    encoded = reencode(data, name)  # before the write lock: decoding takes the longest
    token = secrets.token_urlsafe(16)
    with engine.begin() as connection:
        room = connection.execute(sa.select(RoomRow).where(RoomRow.id == room_id, RoomRow.expires_at > now)
                                  .with_for_update()).first()
        if room is None:
            raise PhotoError("This room has ended. Ask your teacher for the new code.")
        if room.locked:
            raise PhotoError("The teacher has closed this room to new photos.")
        counts = dict(connection.execute(
            sa.select(PhotoRow.student, sa.func.count()).where(PhotoRow.room_id == room_id)
            .group_by(PhotoRow.student)).all())
        if counts.get(student, 0) >= room.student_cap:
            raise PhotoError(f"You have sent {room.student_cap} photos, the most one student may send. "
                             f"Delete one of yours to send another.")
        if sum(counts.values()) >= room.room_cap:
            raise PhotoError(f"This room holds {room.room_cap} photos, as many as it may. Ask your teacher.")
        photo_id = secrets.token_hex(16)
        status = PENDING if room.moderated else APPROVED
        connection.execute(sa.insert(PhotoRow).values(
            id=photo_id, room_id=room_id, student=student, delete_hash=token_hash(token), status=status,
            created_at=now, width=encoded.width, height=encoded.height, jpeg=encoded.jpeg,
            thumbnail=encoded.thumbnail))
        bump_version(connection, room_id)
    return AddedPhoto(photo_id, token, status)


def delete_own_photo(engine: Engine, photo_id: str, delete_token: str) -> bool:
    """Delete a photo with its student's token; False when the token does not match or the photo is gone."""
    with engine.begin() as connection:
        room_id = connection.execute(sa.select(PhotoRow.room_id).where(
            PhotoRow.id == photo_id, PhotoRow.delete_hash == token_hash(delete_token))).scalar()
        if room_id is None:
            return False
        _delete(connection, room_id, photo_id)
    return True


def _delete(connection, room_id: str, photo_id: str) -> None:
    connection.execute(sa.delete(PredictionRow).where(PredictionRow.photo_id == photo_id))
    connection.execute(sa.delete(PhotoRow).where(PhotoRow.id == photo_id, PhotoRow.room_id == room_id))
    bump_version(connection, room_id)


def delete_photo(engine: Engine, room_id: str, photo_id: str) -> None:
    """The teacher deletes a photo of the room."""
    with engine.begin() as connection:
        _delete(connection, room_id, photo_id)


def set_status(engine: Engine, room_id: str, photo_id: str, status: str) -> None:
    """The teacher approves (shown on the grid) or hides a photo of the room."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    with engine.begin() as connection:
        connection.execute(sa.update(PhotoRow).where(PhotoRow.id == photo_id, PhotoRow.room_id == room_id)
                           .values(status=status))
        bump_version(connection, room_id)


def photos_of(engine: Engine, room_id: str, statuses: tuple[str, ...] = STATUSES,
              student: str | None = None) -> list[Photo]:
    """The room's photos with these statuses (of one student when `student` is given), oldest first."""
    with engine.begin() as connection:
        query = sa.select(PhotoRow.id, PhotoRow.status, PhotoRow.created_at, PhotoRow.width, PhotoRow.height) \
            .where(PhotoRow.room_id == room_id, PhotoRow.status.in_(statuses)) \
            .order_by(PhotoRow.created_at, PhotoRow.id)
        if student is not None:
            query = query.where(PhotoRow.student == student)
        rows = connection.execute(query).all()
        found: dict[str, dict[str, tuple[str, float]]] = {row.id: {} for row in rows}
        if rows:
            for prediction in connection.execute(sa.select(PredictionRow).where(
                    PredictionRow.photo_id.in_(list(found)))):
                found[prediction.photo_id][prediction.model_name] = (prediction.label, prediction.confidence)
    return [Photo(row.id, row.status, row.created_at, row.width, row.height, found[row.id]) for row in rows]


def photo_bytes(engine: Engine, room_id: str, photo_id: str, thumbnail: bool = False) -> bytes | None:
    """A photo's JPEG (or its thumbnail), or None when it is no longer in the room."""
    column = PhotoRow.thumbnail if thumbnail else PhotoRow.jpeg
    with engine.begin() as connection:
        return connection.execute(sa.select(column).where(PhotoRow.id == photo_id,
                                                          PhotoRow.room_id == room_id)).scalar()


def _insert_ignoring_duplicates(engine: Engine, values: dict):
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    return insert(PredictionRow).values(**values).on_conflict_do_nothing()


def predict_missing(engine: Engine, room: Room, models: Mapping[str, LoadedModel],
                    statuses: tuple[str, ...] = (PENDING, APPROVED)) -> int:
    """Classify every photo of the room that lacks a stored top-1 of one of the room's models (and that model
    is loaded), store it, and return how many were computed. Another replica computing the same one at the
    same moment is harmless: the first stored wins."""
    wanted = [name for name in room.models if name in models]
    computed = 0
    for photo in photos_of(engine, room.id, statuses):
        missing = [name for name in dict.fromkeys(wanted) if name not in photo.predictions]
        if not missing:
            continue
        data = photo_bytes(engine, room.id, photo.id)
        if data is None:  # deleted meanwhile
            continue
        image = Image.open(io.BytesIO(data)).convert("RGB")
        answers = {name: classify(models[name], image).top(1)[0] for name in missing}
        try:
            with engine.begin() as connection:
                if connection.execute(sa.select(PhotoRow.id).where(PhotoRow.id == photo.id)).first() is None:
                    continue  # deleted while it was classified
                for name, (label, confidence) in answers.items():
                    connection.execute(_insert_ignoring_duplicates(engine, dict(
                        photo_id=photo.id, model_name=name, label=label, confidence=confidence)))
                bump_version(connection, room.id)
        except IntegrityError:  # deleted by another replica between the check and the insert
            continue
        computed += len(answers)
    return computed
