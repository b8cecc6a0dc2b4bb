"""The class gallery's library on SQLite: rooms and codes, the teacher secret, re-encoding (no GPS kept), caps,
moderation, the student's delete, rate limits on wrong codes, predictions computed once, the grid's sentences.
The room's whole life, on SQLite and on a real PostgreSQL, is in tests/system/test_gallery_life.py."""

from __future__ import annotations

import io
import json

import pytest
import sqlalchemy as sa
from PIL import ExifTags, Image

from shufflenet_viz.gallery import limits, photos, rooms, store, summary
from shufflenet_viz.gallery.photos import APPROVED, HIDDEN, PENDING, Photo, PhotoError
from shufflenet_viz.gallery.qr import qr_png

T0 = 1_800_000_000.0  # a fixed clock: rate limits and expiry are tested without waiting
MODELS = ("cifar10_g1", "cifar10_g3")
GPS_LATITUDE = (48.0, 51.0, 24.5)  # a place the stored photo must not reveal


@pytest.fixture()
def engine(tmp_path):
    made = store.open_store(f"sqlite:///{tmp_path / 'gallery.db'}")
    yield made
    made.dispose()


def tagged_jpeg(size=(1600, 1200), colour=(200, 120, 40)) -> bytes:
    """A JPEG carrying GPS tags, a camera model, an ICC profile, XMP and a comment."""
    image = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "PhoneCam 12"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: GPS_LATITUDE,
                                  ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (2.0, 17.0, 40.2)}
    buffer = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description exif:GPSLatitude="48,51.4N"/></x:xmpmeta>'
    image.save(buffer, format="JPEG", exif=exif, xmp=xmp, comment=b"taken at home",
               icc_profile=b"\0" * 128)
    return buffer.getvalue()


def png(colour=(10, 200, 30), size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_source_photo_does_carry_gps():
    source = Image.open(io.BytesIO(tagged_jpeg()))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == GPS_LATITUDE
    assert "xmp" in source.info and "icc_profile" in source.info and "comment" in source.info


def test_a_photo_with_gps_tags_is_stored_without_any_metadata(engine):
    opened = rooms.open_room(engine, MODELS, now=T0)
    added = photos.add_photo(engine, opened.room.id, "student-a", tagged_jpeg(), "gps.jpg", now=T0)
    for thumbnail in (False, True):
        stored = photos.photo_bytes(engine, opened.room.id, added.photo_id, thumbnail=thumbnail)
        image = Image.open(io.BytesIO(stored))
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {} and image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(image.info), image.info.keys()
        assert b"Exif" not in stored and b"xmpmeta" not in stored and b"taken at home" not in stored
        assert b"\xff\xe1" not in stored  # no APP1 segment (EXIF, XMP) at all
    assert max(Image.open(io.BytesIO(photos.photo_bytes(engine, opened.room.id, added.photo_id))).size) == \
        photos.MAX_SIDE


def test_exif_orientation_is_applied_before_the_tag_is_dropped():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: shown turned 90 degrees clockwise
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    encoded = photos.reencode(buffer.getvalue())
    assert (encoded.width, encoded.height) == (20, 40)


def test_a_file_that_is_no_image_is_refused_with_a_message(engine):
    opened = rooms.open_room(engine, MODELS, now=T0)
    with pytest.raises(PhotoError, match="not an image"):
        photos.add_photo(engine, opened.room.id, "s", b"hello, not a photo", "notes.txt", now=T0)
    assert photos.photos_of(engine, opened.room.id) == []


def test_join_codes_are_short_unambiguous_and_typed_loosely(engine):
    codes = {rooms.new_join_code() for _ in range(500)}
    assert len(codes) > 495
    assert all(len(code) == rooms.CODE_LENGTH and set(code) <= set(rooms.CODE_ALPHABET) for code in codes)
    assert not set("01OIL") & set(rooms.CODE_ALPHABET)
    opened = rooms.open_room(engine, MODELS, now=T0)
    typed = " " + opened.room.join_code[:3].lower() + "-" + opened.room.join_code[3:] + " "
    assert rooms.look_up_code(engine, typed, "10.0.0.1", now=T0).room.id == opened.room.id


def test_the_teacher_secret_is_stored_only_as_a_hash_and_is_unrelated_to_the_code(engine):
    opened = [rooms.open_room(engine, MODELS, now=T0) for _ in range(3)]
    with engine.connect() as connection:
        dumped = json.dumps([list(map(str, row)) for row in connection.execute(sa.select(store.RoomRow))])
    for room in opened:
        assert len(room.teacher_secret) >= 22  # 16 random bytes, URL-safe base64
        assert room.teacher_secret not in dumped
        assert room.teacher_secret.upper().find(room.room.join_code) == -1
        assert rooms.secret_hash(room.teacher_secret) in dumped
        assert rooms.room_for_teacher(engine, room.teacher_secret, now=T0).id == room.room.id
        # Nothing computed from the code opens the teacher's view.
        for guess in (room.room.join_code, room.room.join_code.lower(), rooms.secret_hash(room.room.join_code),
                      room.room.id):
            assert rooms.room_for_teacher(engine, guess, now=T0) is None
    assert len({room.teacher_secret for room in opened}) == 3


def test_rooms_expire_and_their_codes_stop_working(engine):
    opened = rooms.open_room(engine, MODELS, now=T0, lifetime_s=60)
    photos.add_photo(engine, opened.room.id, "s", png(), now=T0)
    assert rooms.look_up_code(engine, opened.room.join_code, "c", now=T0 + 59).room is not None
    late = rooms.look_up_code(engine, opened.room.join_code, "c", now=T0 + 61)
    assert late.room is None and late.message == rooms.NO_ROOM_MESSAGE
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(store.PhotoRow)).scalar() == 0
        assert connection.execute(sa.select(sa.func.count()).select_from(store.RoomRow)).scalar() == 0


def test_a_thousand_wrong_codes_from_one_client_are_slowed_down_and_reveal_nothing(engine):
    opened = rooms.open_room(engine, MODELS, now=T0)
    answers = [rooms.look_up_code(engine, rooms.new_join_code(), "203.0.113.9", now=T0 + i * 0.01)
               for i in range(1000)]
    checked = [answer for answer in answers if answer.message == rooms.NO_ROOM_MESSAGE]
    assert len(checked) == limits.WRONG_CODES.burst  # then no code is even looked at
    assert all(answer.room is None and answer.delay_s >= limits.WRONG_CODE_DELAY_S for answer in answers)
    refused = {answer.message for answer in answers[len(checked):]}
    assert refused <= {rooms.TOO_MANY_MESSAGE.format(seconds=seconds) for seconds in range(1, 11)}, refused
    # The right code, now, gets the same refusal: the answer says nothing about which codes exist.
    assert rooms.look_up_code(engine, opened.room.join_code, "203.0.113.9", now=T0 + 10).room is None
    # Another client is not held up, and the guesser regains one try per 10 s.
    assert rooms.look_up_code(engine, opened.room.join_code, "198.51.100.7", now=T0 + 10).room is not None
    assert rooms.look_up_code(engine, opened.room.join_code, "203.0.113.9", now=T0 + 30).room is not None
    # Unknown, malformed and ended codes get one and the same answer.
    rooms.end_room(engine, opened.room.id)
    for typed in ("ZZZZZZ", "hello", "", opened.room.join_code):
        answer = rooms.look_up_code(engine, typed, "192.0.2.1", now=T0 + 40)
        assert (answer.room, answer.message) == (None, rooms.NO_ROOM_MESSAGE)


def test_rate_limit_buckets_store_no_address(engine):
    limits.take(engine, "code", "203.0.113.9", limits.CODE_LOOKUPS, T0)
    with engine.connect() as connection:
        keys = connection.execute(sa.select(store.BucketRow.key)).scalars().all()
    assert keys and all("203.0.113" not in key for key in keys)


def test_a_token_bucket_refills_at_its_rate(engine):
    limit = limits.Limit(burst=3, per_second=0.5)
    assert [limits.take(engine, "k", "c", limit, T0) for _ in range(4)] == [0, 0, 0, 2.0]
    assert limits.take(engine, "k", "c", limit, T0 + 1.0) == pytest.approx(1.0)
    assert limits.take(engine, "k", "c", limit, T0 + 2.0) == 0


def test_the_client_is_the_peer_unless_a_local_proxy_forwarded_it():
    assert limits.client_address("81.2.69.160", {"X-Forwarded-For": "1.2.3.4"}) == "81.2.69.160"
    assert limits.client_address("127.0.0.1", {"X-Forwarded-For": "9.9.9.9, 198.51.100.7"}) == "198.51.100.7"
    assert limits.client_address("127.0.0.1", {}) == "127.0.0.1"
    assert limits.client_address(None, {}) == "unknown"


def test_moderation_caps_and_locking(engine):
    opened = rooms.open_room(engine, MODELS, now=T0)
    room_id = opened.room.id
    first = photos.add_photo(engine, room_id, "s1", png(), now=T0)
    assert first.status == PENDING
    version = rooms.room_version(engine, room_id)
    photos.set_status(engine, room_id, first.photo_id, APPROVED)
    assert rooms.room_version(engine, room_id) > version
    assert [p.id for p in photos.photos_of(engine, room_id, (APPROVED,))] == [first.photo_id]
    photos.set_status(engine, room_id, first.photo_id, HIDDEN)
    assert photos.photos_of(engine, room_id, (APPROVED,)) == []
    for index in range(rooms.STUDENT_CAP - 1):
        photos.add_photo(engine, room_id, "s1", png((index, 0, 0)), now=T0)
    with pytest.raises(PhotoError, match=f"{rooms.STUDENT_CAP} photos"):
        photos.add_photo(engine, room_id, "s1", png(), now=T0)
    rooms.set_moderated(engine, room_id, False)
    assert photos.add_photo(engine, room_id, "s2", png(), now=T0).status == APPROVED
    rooms.set_locked(engine, room_id, True)
    with pytest.raises(PhotoError, match="closed this room"):
        photos.add_photo(engine, room_id, "s3", png(), now=T0)
    rooms.set_locked(engine, room_id, False)
    with engine.begin() as connection:
        connection.execute(sa.update(store.RoomRow).values(room_cap=7))
    photos.add_photo(engine, room_id, "s3", png(), now=T0)
    with pytest.raises(PhotoError, match="holds 7 photos"):
        photos.add_photo(engine, room_id, "s4", png(), now=T0)


def test_a_student_deletes_their_own_photo_and_no_one_else_s(engine):
    opened = rooms.open_room(engine, MODELS, now=T0)
    mine = photos.add_photo(engine, opened.room.id, "s1", png(), now=T0)
    theirs = photos.add_photo(engine, opened.room.id, "s2", png(), now=T0)
    assert not photos.delete_own_photo(engine, theirs.photo_id, mine.delete_token)
    assert photos.delete_own_photo(engine, mine.photo_id, mine.delete_token)
    assert not photos.delete_own_photo(engine, mine.photo_id, mine.delete_token)
    assert [p.id for p in photos.photos_of(engine, opened.room.id)] == [theirs.photo_id]


def test_predictions_are_computed_once_per_photo_and_model(engine, cifar_pair, sample_image_paths):
    models = {loaded.name: loaded for loaded in cifar_pair}
    opened = rooms.open_room(engine, tuple(models), now=T0)
    for name in ("dog.jpg", "cat.jpg"):
        photos.add_photo(engine, opened.room.id, "s", sample_image_paths[name].read_bytes(), name, now=T0)
    assert photos.predict_missing(engine, opened.room, models) == 4
    assert photos.predict_missing(engine, opened.room, models) == 0
    stored = photos.photos_of(engine, opened.room.id)
    assert all(set(photo.predictions) == set(models) for photo in stored)
    assert all(0 < confidence <= 1 for photo in stored for _, confidence in photo.predictions.values())


def test_qr_code_is_a_png():
    data = qr_png("http://127.0.0.1:8501/gallery?code=ABC234")
    assert data.startswith(b"\x89PNG") and Image.open(io.BytesIO(data)).size[0] > 200


def photo(photo_id: str, left: str, right: str, created: float, confidence=(0.5, 0.7)) -> Photo:
    return Photo(photo_id, APPROVED, created, 10, 10, {MODELS[0]: (left, confidence[0]),
                                                       MODELS[1]: (right, confidence[1])})


def test_the_grid_puts_disagreements_first_and_says_how_many_agreed():
    grid = [photo("a", "cat", "cat", 1), photo("b", "cat", "dog", 2), photo("c", "dog", "dog", 3),
            photo("d", "ship", "truck", 4), Photo("e", APPROVED, 5, 10, 10, {MODELS[0]: ("cat", 0.9)})]
    facts = summary.summarise(grid, MODELS)
    assert [p.id for p in facts.ordered] == ["d", "b", "c", "a"]
    assert (facts.answered, facts.agreed, facts.disagreed, facts.waiting) == (4, 2, 2, 1)
    assert facts.mean_confidence == pytest.approx((0.5, 0.7))
    labels = ("g=1", "g=3")
    assert summary.agreement_sentence(facts, labels) == \
        "On your 4 photos, g=1 and g=3 agreed on 2 (50%); the 2 where they did not come first."
    assert summary.confidence_sentence(facts, labels) == "Mean confidence in their answer: g=1 50%, g=3 70%."
    assert summary.waiting_sentence(facts) == "1 photo is being classified."


@pytest.mark.parametrize("pairs, expected", [
    ([], "No photo is on the grid yet."),
    ([("cat", "cat")], "On your 1 photo, g=1 and g=3 agreed."),
    ([("cat", "dog")], "On your 1 photo, g=1 and g=3 disagreed."),
    ([("cat", "cat"), ("dog", "dog")], "On your 2 photos, g=1 and g=3 agreed on every one."),
    ([("cat", "dog"), ("dog", "cat")], "On your 2 photos, g=1 and g=3 agreed on none."),
    ([("cat", "cat"), ("dog", "dog"), ("cat", "ship")],
     "On your 3 photos, g=1 and g=3 agreed on 2 (67%); the one where they did not comes first."),
])
def test_the_agreement_sentence_follows_the_counts(pairs, expected):
    facts = summary.summarise([photo(str(i), a, b, i) for i, (a, b) in enumerate(pairs)], MODELS)
    assert summary.agreement_sentence(facts, ("g=1", "g=3")) == expected
    assert (summary.confidence_sentence(facts, ("g=1", "g=3")) is None) == (not pairs)
