"""The class gallery's pages: opening a room, the teacher's view (settings, approval queue, ending the room), the
projected grid (polled against the room's version) and joining from a phone (the notice, then upload or camera,
then the student's own photos with their delete buttons).

Which view a visit gets is in its URL: `?teacher=<secret>` (the teacher link: never projected), `?show=<code>`
(the projected grid, with the join code and its QR code), `?code=<code>` (a student joining).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from urllib.parse import urlencode, urlsplit

import streamlit as st
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from shufflenet_viz.gallery import limits, photos, rooms, store, summary
from shufflenet_viz.gallery.photos import APPROVED, HIDDEN, PENDING, PhotoError
from shufflenet_viz.gallery.qr import qr_png
from shufflenet_viz.gallery.rooms import Room, RoomError

from .models import loaded_models
from .picture import UPLOAD_TYPES, use_picture

TEACHER_PARAM, SHOW_PARAM, CODE_PARAM = "teacher", "show", "code"
GRID_POLL_S = 1  # the projected grid asks for the room's version this often (a run of 60 photos: ~0.1 s)
QUEUE_POLL_S = 3  # the teacher's queue, likewise
GRID_COLUMNS = 5  # 60 photos in 12 rows; a cell keeps "g=3: airplane 30%" on one line at projector type
QUEUE_COLUMNS = 4
# This session's part in the gallery (a student's id and delete tokens, the room joined, the notice read).
STUDENT_KEY = "lens_gallery_student"
TOKENS_KEY = "lens_gallery_tokens"  # photo id -> delete token: the only copy of each token
JOINED_KEY = "lens_gallery_room"
NOTICE_KEY = "lens_gallery_notice_read"  # ids of the rooms whose notice this session accepted
UPLOAD_ROUND_KEY = "lens_gallery_upload_round"  # a new uploader after each photo sent
MESSAGE_KEY = "lens_gallery_message"  # (kind, text) of what the last action became, said once
# A view's photos and thumbnails as last read, with the room's version then: re-read only when it changes.
SNAPSHOT_KEY = "lens_gallery_snapshot"
SHOWN_KEY = "lens_gallery_shown"
DATABASE_PROBLEM = ("The class gallery's database cannot be reached right now ({reason}). Reload the page in a "
                    "minute; if it persists, the server's owner checks {setting}.")


# Bounded: one engine per database URL, and a server uses one (a test may switch between a few).
@st.cache_resource(max_entries=4, show_spinner="Opening the class gallery...")
def _engine(url: str) -> Engine:
    return store.open_store(url)


@contextmanager
def database_errors() -> Iterator[None]:
    """A database that cannot be reached (or a migration that fails) becomes one message, never a traceback."""
    try:
        yield
    except SQLAlchemyError as error:
        st.error(DATABASE_PROBLEM.format(reason=type(error).__name__, setting=store.DATABASE_ENV))


def say_message() -> None:
    """What the last button or upload became (said once, on the run after it)."""
    kind, message = st.session_state.pop(MESSAGE_KEY, (None, None))
    if message:
        getattr(st, kind)(message)


def gallery_engine() -> Engine:
    """The gallery's database, migrated once per process and URL."""
    return _engine(store.database_url())


def _client() -> str:
    return limits.client_address(st.context.ip_address, st.context.headers)


def _model_label(name: str) -> str:
    models = loaded_models()
    return models.label(name) if name in models else name


def _grid_labels(models: tuple[str, str]) -> tuple[str, str]:
    # Full labels are too long under a grid cell: the group counts ("g=1", "g=3") say which is which, unless
    # they are the same for both models.
    full = tuple(_model_label(name) for name in models)
    short = tuple(label[label.find("g="):].split()[0] if "g=" in label else label for label in full)
    return short if short[0] != short[1] else full


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%H:%M UTC on %d %b")


def _app_url() -> str:
    url = st.context.url or ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


def _opened_on_loopback() -> bool:
    host = urlsplit(st.context.url or "").hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def join_link(code: str) -> str:
    """The address a phone opens to join (what the QR code holds)."""
    return f"{_app_url()}/gallery?{urlencode({CODE_PARAM: code})}"


# --- opening a room ------------------------------------------------------------------------------------------------

def landing(pair: tuple[str, str]) -> None:
    """No room in the URL: join one by code, or open one comparing the sidebar's two models."""
    st.markdown("Every student's photo on the projector, and where the two models agree. Students join with a "
                "short code; by default you approve each photo before the class sees it.")
    join_form()
    st.subheader("Open a room")
    left, right = (_model_label(name) for name in pair)
    st.markdown(f"The room compares the two models chosen in the sidebar: **{left}** and **{right}**. It stays "
                f"open {rooms.ROOM_LIFETIME_S // 3600} h at most, then everything in it is deleted.")
    # Actions are callbacks throughout: they run before the script, so a run that Streamlit restarts (see
    # ui.frame.ensure_shell) cannot lose a click.
    st.button("Open a room", icon=":material/add:", type="primary", key="gallery_open", on_click=_safely,
              args=(_open_room, pair))


def _open_room(pair: tuple[str, str]) -> None:
    opened = rooms.open_room(gallery_engine(), pair)
    st.query_params.clear()
    st.query_params[TEACHER_PARAM] = opened.teacher_secret  # the teacher link: this page's address


# --- the teacher's view --------------------------------------------------------------------------------------------

def teacher_view(secret: str) -> bool:
    """The teacher link's page: the room's code and settings, the approval queue, every photo, ending the room.
    False (after saying so) when the link opens no room."""
    engine = gallery_engine()
    rooms.purge_expired(engine)
    room = rooms.room_for_teacher(engine, secret)
    if room is None:
        st.error("This teacher link opens no room: the room was ended or expired. Open a new one below.")
        st.query_params.pop(TEACHER_PARAM, None)
        return False
    st.warning("This page is the room's key: keep its address to come back, and never project it (the approval "
               "queue is here). Project the grid instead.", icon=":material/key:")
    code_column, settings_column = st.columns([2, 3], gap="large")
    with code_column:
        with st.container(key="gallery_teacher_code"):
            st.markdown(f"Join code: **{room.join_code}**")
        st.caption(f"Open until {_when(room.expires_at)}. Comparing {_model_label(room.models[0])} and "
                   f"{_model_label(room.models[1])}.")
        st.page_link("pages/gallery.py", label="Project the grid", icon=":material/co_present:",
                     query_params={SHOW_PARAM: room.join_code})
    with settings_column:
        # The room's settings as stored (another tab of the teacher's may have changed them), changed by a flip.
        st.session_state["gallery_locked"], st.session_state["gallery_moderated"] = room.locked, room.moderated
        st.toggle("Locked: no new photos", key="gallery_locked", on_change=_safely,
                  args=(_set_setting, rooms.set_locked, room.id, "gallery_locked"))
        st.toggle("Approve each photo before it appears", key="gallery_moderated", on_change=_safely,
                  args=(_set_setting, rooms.set_moderated, room.id, "gallery_moderated"))
        _end_room_controls(engine, room)
    _teacher_photos(room.id)
    return True


def _set_setting(setter, room_id: str, key: str) -> None:
    setter(gallery_engine(), room_id, bool(st.session_state[key]))


def _end_room_controls(engine: Engine, room: Room) -> None:
    with st.popover("End the room", icon=":material/delete_forever:"):
        st.markdown("Ending the room deletes every photo, every prediction and the room itself at once; its code "
                    "stops working.")
        st.button("End and delete everything", type="primary", key="gallery_end", on_click=_safely,
                  args=(_end_room, room.id))


def _end_room(room_id: str) -> None:
    rooms.end_room(gallery_engine(), room_id)
    st.query_params.pop(TEACHER_PARAM, None)
    st.session_state[MESSAGE_KEY] = ("success", "The room was ended; nothing of it is kept.")


@st.fragment(run_every=QUEUE_POLL_S)
def _teacher_photos(room_id: str) -> None:
    with database_errors():
        engine = gallery_engine()
        room = rooms.room_by_id(engine, room_id)
        if room is None:
            st.info("This room has ended.")
            return
        everything, thumbnails = _snapshot(engine, room.id, (PENDING, APPROVED, HIDDEN), "teacher")
        by_status = {status: [photo for photo in everything if photo.status == status]
                     for status in (PENDING, APPROVED, HIDDEN)}
        st.subheader(f"Waiting for approval ({len(by_status[PENDING])})")
        if not by_status[PENDING]:
            st.caption("New photos appear here." if room.moderated else
                       "Approval is off: new photos go straight to the grid.")
        _photo_cells(engine, room, by_status[PENDING], thumbnails, (("Approve", APPROVED), ("Hide", HIDDEN)))
        st.subheader(f"On the grid ({len(by_status[APPROVED])})")
        _photo_cells(engine, room, by_status[APPROVED], thumbnails, (("Hide", HIDDEN),))
        if by_status[HIDDEN]:
            st.subheader(f"Hidden ({len(by_status[HIDDEN])})")
            _photo_cells(engine, room, by_status[HIDDEN], thumbnails, (("Approve", APPROVED),))


def _safely(action, *args) -> None:
    # A button's callback: a database that fails mid-class becomes a message on the next run.
    try:
        action(*args)
    except (RoomError, PhotoError) as error:
        st.session_state[MESSAGE_KEY] = ("error", str(error))
    except SQLAlchemyError as error:
        st.session_state[MESSAGE_KEY] = ("error", DATABASE_PROBLEM.format(reason=type(error).__name__,
                                                                       setting=store.DATABASE_ENV))


def _photo_cells(engine: Engine, room: Room, shown: list, thumbnails: dict[str, bytes],
                 actions: tuple[tuple[str, str], ...]) -> None:
    for start in range(0, len(shown), QUEUE_COLUMNS):
        for column, photo in zip(st.columns(QUEUE_COLUMNS), shown[start:start + QUEUE_COLUMNS]):
            with column, st.container(key=f"gallery_queue_{photo.id}"):
                if photo.id not in thumbnails:
                    continue
                st.image(thumbnails[photo.id], output_format="JPEG")
                with st.container(horizontal=True, gap="small"):  # wraps when the column is narrow
                    for label, status in actions:
                        st.button(label, key=f"gallery_{status}_{photo.id}", on_click=_safely,
                                  args=(photos.set_status, engine, room.id, photo.id, status))
                    st.button("Delete", key=f"gallery_delete_{photo.id}", on_click=_safely,
                              args=(photos.delete_photo, engine, room.id, photo.id))


def _snapshot(engine: Engine, room_id: str, statuses: tuple[str, ...], view: str) -> tuple[list, dict[str, bytes]]:
    """The room's photos with these statuses and their thumbnails (photo id -> JPEG), read again only when the
    room's version has changed since this session's view `view` last read them. Only the current photos are
    kept: a deleted one leaves this session's memory at the next change."""
    kept = st.session_state.setdefault(SNAPSHOT_KEY, {}).get(view)
    version = rooms.room_version(engine, room_id)
    if kept is not None and kept[0] == (room_id, version):
        return kept[1], kept[2]
    shown = photos.photos_of(engine, room_id, statuses)
    known = kept[2] if kept is not None and kept[0][0] == room_id else {}
    thumbnails = {}
    for photo in shown:  # a photo's bytes never change: only new ones are read
        thumbnail = known.get(photo.id) or photos.photo_bytes(engine, room_id, photo.id, thumbnail=True)
        if thumbnail is not None:
            thumbnails[photo.id] = thumbnail
    st.session_state[SNAPSHOT_KEY][view] = ((room_id, version), shown, thumbnails)
    return shown, thumbnails


# --- the projected grid --------------------------------------------------------------------------------------------

def look_up(typed: str, say=st.error) -> Room | None:
    """The room a typed code opens for this client, rate limited; a refusal is answered late, with the same
    message whatever the reason (said with `say`)."""
    answer = rooms.look_up_code(gallery_engine(), typed, _client())
    if answer.room is None:
        time.sleep(answer.delay_s)  # this session's thread only: every other session goes on
        say(answer.message)
    return answer.room


def projected_view(code: str) -> None:
    """The grid for the projector: join code and QR code, the agreement figures, the approved photos with both
    models' top-1, disagreements first; redrawn within GRID_POLL_S of any change."""
    room_id = st.session_state.get(SHOWN_KEY, {}).get(code)
    rooms.purge_expired(gallery_engine())
    if room_id is None:
        room = look_up(code)
        if room is None:
            return
        st.session_state.setdefault(SHOWN_KEY, {})[code] = room_id = room.id
    _grid(room_id, code)


@st.fragment(run_every=GRID_POLL_S)
def _grid(room_id: str, code: str) -> None:
    with database_errors():
        engine = gallery_engine()
        room = rooms.room_by_id(engine, room_id)
        if room is None:
            st.info("This room has ended; its photos are deleted.")
            return
        photos.predict_missing(engine, room, loaded_models(), statuses=(APPROVED,))
        grid, thumbnails = _snapshot(engine, room.id, (APPROVED,), "grid")
        facts = summary.summarise(grid, room.models)
        labels = _grid_labels(room.models)
        code_column, facts_column = st.columns([1, 3], gap="large")
        with code_column, st.container(key="gallery_join"):
            st.image(qr_png(join_link(code)), width=180)
            st.markdown(f"Join: **{code}**" + ("" if not room.locked else " (closed to new photos)"))
            if _opened_on_loopback():
                st.caption("Phones cannot reach this loopback address: open this page by the machine's network "
                           "address for the QR code to work.")
        with facts_column, st.container(key="gallery_facts"):
            st.markdown(f"**{summary.agreement_sentence(facts, labels)}**")
            for line in (summary.confidence_sentence(facts, labels), summary.waiting_sentence(facts)):
                if line:
                    st.markdown(line)
            st.caption("A photo's Use button makes it the picture of every page of this tab (Lesson, Feature maps, "
                       "Attributions...).")
        for start in range(0, facts.answered, GRID_COLUMNS):
            row = facts.ordered[start:start + GRID_COLUMNS]
            for column, photo in zip(st.columns(GRID_COLUMNS), row):
                with column, st.container(key=f"gallery_cell_{photo.id}", border=True):
                    _grid_cell(room, photo, facts.agrees(photo), labels, thumbnails.get(photo.id))


def _grid_cell(room: Room, photo, agree: bool, labels: tuple[str, str], thumbnail: bytes | None) -> None:
    if thumbnail is None:
        return
    st.image(thumbnail, output_format="JPEG")
    (left, left_p), (right, right_p) = (photo.predictions[name] for name in room.models)
    mark = ":green[same]" if agree else ":orange[different]"
    st.markdown(f"{labels[0]}: **{left}** {left_p:.0%}  \n{labels[1]}: **{right}** {right_p:.0%}  \n{mark}")
    st.button("Use", key=f"gallery_use_{photo.id}", icon=":material/open_in_new:", on_click=_safely,
              args=(_use_photo, room.id, photo.id), help="Make this photo the picture of every page of this tab.")


def _use_photo(room_id: str, photo_id: str) -> None:
    data = photos.photo_bytes(gallery_engine(), room_id, photo_id)
    if data is not None and use_picture(data, f"class photo {photo_id[:6]}", "gallery"):
        st.toast("This photo is now the picture of every page (Lesson, Feature maps, Attributions...).")


# --- a student joining ---------------------------------------------------------------------------------------------

def join_form() -> None:
    """The join code field; a code that opens a room joins it."""
    with st.form("gallery_join_form", border=False):
        st.text_input("Join a room: the code on the projector", max_chars=12, key="gallery_code_typed",
                      placeholder="e.g. K7P2QX")
        st.form_submit_button("Join", icon=":material/login:", on_click=_safely, args=(_join,))


def _join() -> None:
    typed = st.session_state.get("gallery_code_typed") or ""
    if not typed.strip():
        st.session_state[MESSAGE_KEY] = ("info", "Type the code shown on the projector, then press Join.")
        return
    room = look_up(typed, say=lambda message: st.session_state.__setitem__(MESSAGE_KEY, ("error", message)))
    if room is not None:
        st.session_state[JOINED_KEY] = room.id
        st.query_params.clear()
        st.query_params[CODE_PARAM] = room.join_code


def student_view(code: str) -> None:
    """A student in a room: the notice before the first upload, then the upload and the student's photos."""
    engine = gallery_engine()
    room = rooms.room_by_id(engine, st.session_state[JOINED_KEY]) if JOINED_KEY in st.session_state else None
    if room is None or room.join_code != rooms.normalise_code(code):
        room = look_up(code)
        if room is None:
            st.session_state.pop(JOINED_KEY, None)
            del st.query_params[CODE_PARAM]  # the next try is typed, not looked up again on every run
            join_form()
            return
        st.session_state[JOINED_KEY] = room.id
    if room.id not in st.session_state.get(NOTICE_KEY, ()):
        _notice(room)
        return
    _upload(engine, room)
    _own_photos(engine, room)


def _notice(room: Room) -> None:
    with st.container(key="gallery_notice", border=True):
        st.subheader("Before you send a photo")
        where = "on the projector for the whole class, once your teacher approves it" if room.moderated else \
            "on the projector for the whole class, straight away"
        st.markdown(
            f"- Your photo appears {where}.\n"
            f"- Two models classify it: {_model_label(room.models[0])} and {_model_label(room.models[1])}.\n"
            f"- The server keeps a copy without any of the file's data (no place, no date, no camera), at most "
            f"{photos.MAX_SIDE} pixels wide, until you delete it here, your teacher deletes it or ends the room, "
            f"and at the latest until {_when(room.expires_at)}.\n"
            f"- **Avoid faces**: photograph an object, an animal, a place.")
        st.button("I understand: let me send a photo", type="primary", key="gallery_notice_ok", on_click=_safely,
                  args=(_accept_notice, room.id))


def _accept_notice(room_id: str) -> None:
    wait = limits.take(gallery_engine(), "join", _client(), limits.JOINS, time.time())
    if wait > 0:
        st.session_state[MESSAGE_KEY] = ("error", f"Many students are joining from here; wait "
                                                  f"{max(1, round(wait))} s and press again.")
        return
    st.session_state.setdefault(NOTICE_KEY, []).append(room_id)


def _send(room: Room, key: str, name: str) -> None:
    sent = st.session_state.get(key)
    if sent is None:
        return
    engine = gallery_engine()
    st.session_state[UPLOAD_ROUND_KEY] = st.session_state.get(UPLOAD_ROUND_KEY, 0) + 1  # a fresh uploader
    wait = limits.take(engine, "upload", _client(), limits.UPLOADS, time.time(), room_id=room.id)
    if wait > 0:
        st.session_state[MESSAGE_KEY] = ("error", f"Many photos are arriving from here; wait {max(1, round(wait))} s "
                                               f"and send it again.")
        return
    student = st.session_state.setdefault(STUDENT_KEY, secrets.token_hex(16))
    try:
        added = photos.add_photo(engine, room.id, student, sent.getvalue(), name or sent.name)
    except PhotoError as error:
        st.session_state[MESSAGE_KEY] = ("error", str(error))
        return
    st.session_state.setdefault(TOKENS_KEY, {})[added.photo_id] = added.delete_token
    current = rooms.room_by_id(engine, room.id)
    if current is not None:
        photos.predict_missing(engine, current, loaded_models())
    st.session_state[MESSAGE_KEY] = ("success", "Sent. It appears on the projector once your teacher approves it."
                                  if added.status == PENDING else "Sent. It is on the projector now.")


def _upload(engine: Engine, room: Room) -> None:
    if room.locked:
        st.info("Your teacher has closed this room to new photos.")
        return
    round_ = st.session_state.get(UPLOAD_ROUND_KEY, 0)
    upload_key, camera_key = f"gallery_upload_{round_}", f"gallery_camera_{round_}"
    st.file_uploader("Send a photo to the class gallery", type=list(UPLOAD_TYPES), key=upload_key,
                     on_change=_safely, args=(_send, room, upload_key, ""))
    if st.toggle("Use the camera", key="gallery_camera_on", help="Asks the browser for the camera only when on."):
        st.camera_input("Take a photo", key=camera_key, on_change=_safely,
                        args=(_send, room, camera_key, "camera photo"))


def _delete_own(photo_id: str) -> None:
    token = st.session_state.get(TOKENS_KEY, {}).pop(photo_id, None)
    if token is not None and photos.delete_own_photo(gallery_engine(), photo_id, token):
        st.session_state[MESSAGE_KEY] = ("success", "Deleted: nothing of that photo is kept.")


def _own_photos(engine: Engine, room: Room) -> None:
    student = st.session_state.get(STUDENT_KEY)
    mine = photos.photos_of(engine, room.id, student=student) if student else []
    tokens = st.session_state.get(TOKENS_KEY, {})
    mine = [photo for photo in mine if photo.id in tokens]
    if not mine:
        return
    st.subheader(f"Your photos ({len(mine)} of {room.student_cap})")
    status_words = {PENDING: "waiting for approval", APPROVED: "on the projector", HIDDEN: "hidden by the teacher"}
    for start in range(0, len(mine), 2):
        for column, photo in zip(st.columns(2), mine[start:start + 2]):
            with column, st.container(key=f"gallery_mine_{photo.id}"):
                thumbnail = photos.photo_bytes(engine, room.id, photo.id, thumbnail=True)
                if thumbnail is not None:
                    st.image(thumbnail, output_format="JPEG", caption=status_words[photo.status])
                st.button("Delete", key=f"gallery_own_delete_{photo.id}", icon=":material/delete:",
                          on_click=_safely, args=(_delete_own, photo.id))
