"""Rate limits shared by every replica: token buckets stored in the gallery's database.

A bucket is keyed by a hash of what it limits and of the client (so no address is stored), holds up to `burst`
tokens and regains `per_second` tokens a second; an action takes one token or is refused with the seconds to
wait. A classroom often reaches the server through one school address, so the limits on joining and uploading
are sized for a whole class from one address; wrong join codes have a small bucket of their own.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .store import BucketRow

BUCKET_IDLE_S = 24 * 3600  # a bucket untouched this long is full again, so its row can go


@dataclass(frozen=True)
class Limit:
    """A token bucket's shape: at most `burst` actions at once, then `per_second` a second."""

    burst: float
    per_second: float


CODE_LOOKUPS = Limit(burst=90, per_second=1.0)  # a class typing the code at once from one school address
WRONG_CODES = Limit(burst=10, per_second=0.1)  # then one wrong code per 10 s per client
JOINS = Limit(burst=120, per_second=2.0)
UPLOADS = Limit(burst=120, per_second=2.0)  # per client and room
WRONG_CODE_DELAY_S = 1.0  # every wrong code is answered this much later


def bucket_key(kind: str, client: str, room_id: str | None = None) -> str:
    """The stored key of a client's bucket of this kind (a hash: the client's address is not kept)."""
    return hashlib.sha256(f"{kind}\0{room_id or ''}\0{client}".encode()).hexdigest()


def _update(engine: Engine, key: str, room_id: str | None, limit: Limit, now: float, take: bool) -> float:
    with engine.begin() as connection:
        query = sa.select(BucketRow.tokens, BucketRow.updated_at).where(BucketRow.key == key)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update()
        row = connection.execute(query).first()
        tokens = limit.burst if row is None else min(limit.burst, row.tokens + (now - row.updated_at)
                                                     * limit.per_second)
        if tokens < 1:
            return (1 - tokens) / limit.per_second
        if not take:
            return 0.0
        if row is None:
            connection.execute(sa.insert(BucketRow).values(key=key, room_id=room_id, tokens=tokens - 1,
                                                           updated_at=now))
        else:
            connection.execute(sa.update(BucketRow).where(BucketRow.key == key)
                               .values(tokens=tokens - 1, updated_at=now))
    return 0.0


def take(engine: Engine, kind: str, client: str, limit: Limit, now: float, room_id: str | None = None) -> float:
    """Take a token from the client's bucket of this kind: 0.0 when allowed, else the seconds to wait (the
    bucket is then left as it was)."""
    key = bucket_key(kind, client, room_id)
    try:
        return _update(engine, key, room_id, limit, now, take=True)
    except IntegrityError:  # another replica created the bucket at the same moment: it exists now
        return _update(engine, key, room_id, limit, now, take=True)


def wait_for(engine: Engine, kind: str, client: str, limit: Limit, now: float, room_id: str | None = None) -> float:
    """The seconds before the client's bucket of this kind holds a token (0.0: now), taking nothing."""
    return _update(engine, bucket_key(kind, client, room_id), room_id, limit, now, take=False)


def forget_idle_buckets(engine: Engine, now: float) -> int:
    """Delete buckets untouched for a day (they would be full again); returns how many went."""
    with engine.begin() as connection:
        return connection.execute(sa.delete(BucketRow).where(BucketRow.updated_at < now - BUCKET_IDLE_S)).rowcount


def client_address(peer: str | None, headers: Mapping[str, str]) -> str:
    """The client a request comes from: the peer's address, or, when the peer is this machine or the private
    network (the load balancer in front of the replicas), the address it appended to X-Forwarded-For (the last
    one: earlier entries are whatever the client sent)."""
    forwarded = [part.strip() for part in (headers.get("X-Forwarded-For") or "").split(",") if part.strip()]
    try:
        behind_proxy = peer is not None and (ipaddress.ip_address(peer).is_loopback
                                             or ipaddress.ip_address(peer).is_private)
    except ValueError:
        behind_proxy = False
    if behind_proxy and forwarded:
        return forwarded[-1]
    return peer or "unknown"
