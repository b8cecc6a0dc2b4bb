"""A class gallery room's whole life against SQLite and against a real PostgreSQL started here on loopback
(Debian's postgresql package: `initdb`, `pg_ctl`): open, join by code, upload, approve, show with both models'
top-1, the student deletes a photo, the teacher ends the room; then no row of it remains, and no byte of its
photos remains in the SQLite files nor in PostgreSQL's table files.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import fail_or_skip
from test_browser import free_port
from shufflenet_viz.gallery import limits, photos, rooms, store, summary
from shufflenet_viz.gallery.photos import APPROVED

POSTGRES_BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
CLIENT = "198.51.100.20"


def _as_postgres_user() -> list[str]:
    # initdb refuses to run as root (CI runs as root): the cluster then belongs to Debian's postgres user.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@contextmanager
def postgres_cluster():
    """A throwaway PostgreSQL cluster on a free loopback port, in a temporary folder; yields its SQLAlchemy URL
    and the data folder, then stops the server and removes the folder."""
    if not POSTGRES_BINARIES or not Path(POSTGRES_BINARIES[-1], "initdb").exists():
        fail_or_skip("PostgreSQL's binaries are missing: install Debian's package with `apt-get install -y "
                     "postgresql`")
    binaries = Path(POSTGRES_BINARIES[-1])
    folder = Path(tempfile.mkdtemp(prefix="lens-postgres-"))
    data, port = folder / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    user = _as_postgres_user()
    try:
        subprocess.run([*user, str(binaries / "initdb"), "-D", str(data), "-U", "lens", "--auth=trust",
                        "-E", "UTF8", "--no-locale", "--no-sync"], check=True, capture_output=True)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
        subprocess.run([*user, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                        str(folder / "server.log"), "-w", "-t", "60", "start"], check=True, capture_output=True)
        try:
            yield f"postgresql+psycopg://lens@127.0.0.1:{port}/postgres", data
        finally:
            subprocess.run([*user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_cluster() as (url, _data):
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'gallery.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("postgres_url")
    made = store.open_store(url)
    if request.param == "postgresql":  # one cluster for the module: each test starts from empty tables
        with made.begin() as connection:
            for table in ("predictions", "photos", "rate_buckets", "rooms"):
                connection.exec_driver_sql(f"DELETE FROM {table}")
    yield made
    made.dispose()


def row_counts(engine) -> dict[str, int]:
    """Rows per table; of the rate-limit buckets only those of a room (a client's code lookups are no room's)."""
    with engine.connect() as connection:
        counts = {row.__tablename__: connection.execute(sa.select(sa.func.count()).select_from(row)).scalar()
                  for row in store.TABLES}
        counts["rate_buckets"] = connection.execute(sa.select(sa.func.count()).select_from(store.BucketRow)
                                                    .where(store.BucketRow.room_id.is_not(None))).scalar()
    return counts


def test_a_room_s_whole_life_leaves_nothing_behind(engine, cifar_pair, sample_image_paths):
    models = {loaded.name: loaded for loaded in cifar_pair}
    opened = rooms.open_room(engine, tuple(models))
    room = opened.room
    assert rooms.room_for_teacher(engine, opened.teacher_secret).id == room.id

    # Three students join by code and upload; one photo is the same for both students.
    joined = rooms.look_up_code(engine, room.join_code.lower(), CLIENT)
    assert joined.room is not None and joined.room.id == room.id
    assert limits.take(engine, "upload", CLIENT, limits.UPLOADS, time.time(), room_id=room.id) == 0
    uploads = {name: photos.add_photo(engine, room.id, f"student-{index}", sample_image_paths[name].read_bytes(),
                                      name) for index, name in enumerate(("dog.jpg", "cat.jpg", "horse.jpg"))}
    assert {added.status for added in uploads.values()} == {photos.PENDING}
    stored_bytes = [photos.photo_bytes(engine, room.id, added.photo_id) for added in uploads.values()]
    assert photos.photos_of(engine, room.id, (APPROVED,)) == []  # the queue is not the grid

    # The teacher approves; the grid shows both models' top-1 for every approved photo.
    for added in uploads.values():
        photos.set_status(engine, room.id, added.photo_id, APPROVED)
    assert photos.predict_missing(engine, rooms.room_by_id(engine, room.id), models) == 6
    facts = summary.summarise(photos.photos_of(engine, room.id, (APPROVED,)), room.models)
    assert facts.answered == 3 and facts.waiting == 0

    # The student who sent the dog deletes it.
    dog = uploads["dog.jpg"]
    assert photos.delete_own_photo(engine, dog.photo_id, dog.delete_token)
    assert len(photos.photos_of(engine, room.id, (APPROVED,))) == 2
    counts = row_counts(engine)
    assert counts["photos"] == 2 and counts["predictions"] == 4 and counts["rooms"] == 1

    # The teacher ends the room: its code and link stop working, and nothing of it remains.
    rooms.end_room(engine, room.id)
    assert row_counts(engine) == {"rooms": 0, "photos": 0, "predictions": 0, "rate_buckets": 0}
    with engine.connect() as connection:  # what is left: the code lookups' buckets, keyed by client alone
        assert connection.execute(sa.select(sa.func.count()).select_from(store.BucketRow)).scalar() > 0
    assert rooms.look_up_code(engine, room.join_code, "192.0.2.50").room is None
    assert rooms.room_for_teacher(engine, opened.teacher_secret) is None
    samples = [data[len(data) // 2:len(data) // 2 + 64] for data in stored_bytes]
    if engine.dialect.name == "sqlite":
        database = Path(engine.url.database)
        files = [path for path in database.parent.glob(database.name + "*")]
        on_disk = b"".join(path.read_bytes() for path in files)
        assert on_disk, files
        assert not [sample for sample in samples if sample in on_disk]
    else:
        with engine.connect() as connection:
            sizes = connection.execute(sa.text(
                "SELECT pg_relation_size(c.oid), pg_relation_size(c.reltoastrelid) FROM pg_class c "
                "WHERE c.relname = 'photos'")).one()
        assert tuple(sizes) == (0, 0)  # vacuumed and truncated: the table files hold no photo


def test_two_engines_on_one_database_see_each_other_at_once(engine):
    # Two replicas each hold an engine; a photo added through one is on the other's grid at its next query.
    other = store.open_store(engine.url.render_as_string(hide_password=False))
    try:
        opened = rooms.open_room(engine, ("cifar10_g1", "cifar10_g3"), moderated=False)
        before = rooms.room_version(other, opened.room.id)
        added = photos.add_photo(engine, opened.room.id, "s", (Path(__file__).parents[2] / "samples" / "cat.jpg")
                                 .read_bytes(), "cat.jpg")
        assert rooms.room_version(other, opened.room.id) > before
        assert [photo.id for photo in photos.photos_of(other, opened.room.id, (APPROVED,))] == [added.photo_id]
        assert photos.photo_bytes(other, opened.room.id, added.photo_id)
    finally:
        other.dispose()


def test_replicas_starting_together_migrate_once(postgres_url):
    # Every replica migrates at its first gallery visit; several processes at once on a fresh database must
    # neither fail nor migrate twice.
    import sys

    fresh = f"lens_fresh_{os.getpid()}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {fresh}")
    url = postgres_url.rsplit("/", 1)[0] + f"/{fresh}"
    probe = "import sys; from shufflenet_viz.gallery import store; store.migrate(store.make_engine(sys.argv[1]))"
    replicas = [subprocess.Popen([sys.executable, "-c", probe, url], cwd=Path(__file__).parents[2],
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [replica.communicate(timeout=120)[1] for replica in replicas]
    try:
        assert [replica.returncode for replica in replicas] == [0] * 4, "\n".join(errors)[-3000:]
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
            assert connection.exec_driver_sql("SELECT count(*) FROM rooms").scalar() == 0
        engine.dispose()
    finally:
        admin.dispose()
