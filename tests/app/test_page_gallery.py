"""The Class gallery page in AppTest: a teacher opens a room; a student joins by code, reads the notice before
any upload control exists, uploads, deletes their own photo; the teacher approves; the projected grid shows both
models' top-1 and never the teacher link; a photo becomes the session's picture; ending the room empties it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from shufflenet_viz.gallery import rooms, store
from ui.state import IMAGE_KEY

GALLERY = "pages/gallery.py"


@pytest.fixture()
def database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'gallery.db'}"
    monkeypatch.setenv(store.DATABASE_ENV, url)
    engine = store.open_store(url)
    yield engine
    engine.dispose()


def gallery_page(app_test, **params):
    at = app_test()
    at.query_params.update(params)
    at.switch_page(GALLERY).run()
    assert not at.exception, at.exception
    return at


def page_text(at) -> str:
    parts = [element.value for kind in ("markdown", "caption", "error", "warning", "info", "success", "title",
                                        "subheader")
             for element in at.get(kind) if isinstance(getattr(element, "value", None), str)]
    return "\n".join(parts)


def count(engine, row) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(row)).scalar()


def open_room(app_test):
    at = gallery_page(app_test)
    at.button(key="gallery_open").click().run()
    assert not at.exception, at.exception
    secret = at.query_params["teacher"]
    secret = secret[0] if isinstance(secret, list) else secret
    return at, secret


def test_the_whole_room_through_the_page(app_test, database, sample_image_paths):
    teacher, secret = open_room(app_test)
    room = rooms.room_for_teacher(database, secret)
    assert room is not None and f"Join code: **{room.join_code}**" in page_text(teacher)
    assert room.models == ("cifar10_g1", "cifar10_g3")  # the sidebar's default pair

    # A student: the notice comes first, and no upload control exists until it is accepted.
    phone = gallery_page(app_test, code=room.join_code.lower())
    assert "Before you send a photo" in page_text(phone) and "Avoid faces" in page_text(phone)
    assert not [w for w in phone.get("file_uploader") if w.key.startswith("gallery_upload")]
    phone.button(key="gallery_notice_ok").click().run()
    uploader = [w for w in phone.get("file_uploader") if w.key.startswith("gallery_upload")]
    assert len(uploader) == 1
    for name in ("dog.jpg", "cat.jpg"):
        uploader = [w for w in phone.get("file_uploader") if w.key.startswith("gallery_upload")][0]
        uploader.set_value((name, sample_image_paths[name].read_bytes(), "image/jpeg"))
        phone.run()
        assert not phone.exception, phone.exception
        assert "Sent. It appears on the projector once your teacher approves it." in page_text(phone)
    assert count(database, store.PhotoRow) == 2 and count(database, store.PredictionRow) == 4
    assert "Your photos (2 of 5)" in page_text(phone)

    # The teacher locks the room: the phone is told, and no upload control is offered.
    teacher.toggle(key="gallery_locked").set_value(True).run()
    assert rooms.room_by_id(database, room.id).locked
    phone.run()
    assert "Your teacher has closed this room to new photos." in page_text(phone)
    assert not [w for w in phone.get("file_uploader") if w.key.startswith("gallery_upload")]
    teacher.toggle(key="gallery_locked").set_value(False).run()
    assert not rooms.room_by_id(database, room.id).locked

    # The student deletes one of their photos.
    own = [b for b in phone.get("button") if b.key.startswith("gallery_own_delete_")]
    own[0].click().run()
    assert "Deleted: nothing of that photo is kept." in page_text(phone)
    assert count(database, store.PhotoRow) == 1

    # The projector: the code and the QR code, nothing of the queue, never the teacher link.
    projector = gallery_page(app_test, show=room.join_code)
    assert f"Join: **{room.join_code}**" in page_text(projector)
    assert "No photo is on the grid yet." in page_text(projector)
    assert len(projector.main.get("image")) == 1  # the QR code

    # The teacher approves; the grid shows the photo with both models' answers.
    teacher.run()
    approve = [b for b in teacher.get("button") if b.key.startswith("gallery_approved_")]
    assert len(approve) == 1
    approve[0].click().run()
    projector.run()
    text = page_text(projector)
    assert "On your 1 photo, g=1 and g=3" in text, text
    assert "Mean confidence in their answer: g=1" in text
    for shown in (projector, phone):
        everything = page_text(shown) + str(shown.query_params)
        assert secret not in everything and rooms.secret_hash(secret) not in everything

    # A click makes the photo this session's picture, for every page.
    [use] = [b for b in projector.get("button") if b.key.startswith("gallery_use_")]
    use.click().run()
    assert projector.session_state[IMAGE_KEY].source == "gallery"

    # The teacher ends the room: nothing of it is left, and its code opens nothing.
    teacher.button(key="gallery_end").click().run()
    assert not teacher.exception, teacher.exception
    assert [count(database, row) for row in (store.RoomRow, store.PhotoRow, store.PredictionRow)] == [0, 0, 0]
    projector.run()
    assert "This room has ended; its photos are deleted." in page_text(projector)
    late = gallery_page(app_test, code=room.join_code)
    assert rooms.NO_ROOM_MESSAGE in page_text(late)


@pytest.mark.parametrize("typed", ["ZZZZZZ", "hello", "K7P2Q"])
def test_a_code_that_opens_no_room_gets_one_message(app_test, database, typed):
    at = gallery_page(app_test, code=typed)
    assert [error.value for error in at.error] == [rooms.NO_ROOM_MESSAGE]
    assert at.text_input(key="gallery_code_typed") is not None  # the code can be typed again


def test_a_photo_that_is_no_image_is_refused_in_words(app_test, database):
    _, secret = open_room(app_test)
    room = rooms.room_for_teacher(database, secret)
    phone = gallery_page(app_test, code=room.join_code)
    phone.button(key="gallery_notice_ok").click().run()
    [uploader] = [w for w in phone.get("file_uploader") if w.key.startswith("gallery_upload")]
    uploader.set_value(("notes.png", b"not a picture at all", "image/png")).run()
    assert not phone.exception
    assert any("not an image" in error.value for error in phone.error), [e.value for e in phone.error]
    assert count(database, store.PhotoRow) == 0


def test_a_gone_teacher_link_says_so(app_test, database):
    at = gallery_page(app_test, teacher="no-such-secret-aaaaaaaaaaaa")
    assert any("opens no room" in error.value for error in at.error)
    assert at.button(key="gallery_open") is not None  # a new room is one click away


def test_an_unreachable_database_is_one_message(app_test, monkeypatch, tmp_path):
    monkeypatch.setenv(store.DATABASE_ENV, "postgresql+psycopg://lens@127.0.0.1:9/none?connect_timeout=2")
    at = gallery_page(app_test, code="K7P2QX")
    assert any("cannot be reached" in error.value for error in at.error), [e.value for e in at.error]



def test_a_student_joins_by_typing_the_code(app_test, database):
    _, secret = open_room(app_test)
    room = rooms.room_for_teacher(database, secret)
    at = gallery_page(app_test)
    at.text_input(key="gallery_code_typed").input(f"{room.join_code[:3]} {room.join_code[3:].lower()}")
    at.button(key="FormSubmitter:gallery_join_form-Join").click().run()
    assert not at.exception, at.exception
    assert "Before you send a photo" in page_text(at)
    assert at.query_params["code"] in (room.join_code, [room.join_code])
