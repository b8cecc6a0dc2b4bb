"""A client of Streamlit's own protocol: one simulated student, without a browser.

It speaks what the browser speaks, so a load test or a deployment test measures the server and not a browser:

- HTTP `GET /_stcore/health` first (as the page load does): the server sets its XSRF cookie there, and a load
  balancer its affinity cookie;
- the websocket `/_stcore/stream`, subprotocols `["streamlit", <XSRF token>]` (the third slot carries the session
  id the browser asks to resume when it reconnects), binary frames: `BackMsg` up, `ForwardMsg` down, both from
  `streamlit.proto`;
- an upload: `BackMsg.file_urls_request` -> `ForwardMsg.file_urls_response` (the URL to PUT), a multipart PUT with
  the `X-Xsrftoken` header, then a rerun whose widget state lists the file (`file_uploader_state_value`).

One cookie jar (a `requests.Session`'s) serves every HTTP request and the websocket handshake, and takes the
cookies the handshake's response sets: an affinity cookie set on the first response is sent on everything after.

Shape::

    with StreamlitSession("http://127.0.0.1:8501") as student:
        first = student.open()                                     # connects, waits for the first script run
        uploader = first.widget_id("lens_upload")                  # by key, or by label
        student.upload(uploader, "cat.jpg", data, "image/jpeg")    # RunResult of the rerun that reads the file
        result = student.rerun(page="attributions")                # RunResult
        result.elapsed_s, result.status, result.texts, result.exceptions, result.elements

`RunResult.elapsed_s` runs from the rerun request to the run's `script_finished` message; `status` is that
message's enum name (FINISHED_SUCCESSFULLY, ...). Widget values sent once are sent again on every later rerun,
as the browser does; trigger values (buttons) only once. `rerun(wait=False)` sends the request and returns None:
`wait()` (or `wait_for_text`, `wait_for_widget`) then reads that run, and a second `rerun` meanwhile interrupts
it, as a click does. `reconnect()` opens a new websocket asking to resume the session, as a browser does after
losing its connection (a replica that does not know the session starts a new one).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import requests
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Common_pb2 import FileURLs, UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

XSRF_COOKIE = "_streamlit_xsrf"
HEALTH_PATH = "/_stcore/health"
STREAM_PATH = "/_stcore/stream"
WIDGET_ELEMENT_TYPES = ("button", "checkbox", "radio", "selectbox", "multiselect", "slider", "number_input",
                        "text_input", "text_area", "file_uploader", "camera_input", "button_group", "toggle",
                        "download_button", "color_picker", "date_input", "time_input")


class ProtocolError(RuntimeError):
    """The server did not answer as Streamlit's protocol says (closed the stream, timed out, no session id)."""


class UploadError(ProtocolError):
    """An upload's PUT failed; `status` is its HTTP status (400: the session lives on another replica)."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"upload failed with HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Element:
    """One element of a script run as its final delta left it: `kind` is the Element oneof name (markdown, alert,
    button, file_uploader, ...); `widget_id`, `label` and `key` are empty for elements that are not widgets."""
    kind: str
    text: str = ""
    widget_id: str = ""
    label: str = ""
    key: str = ""


@dataclass
class RunResult:
    """What one script run sent: its time from the rerun request to `script_finished`, and its content."""
    status: str = ""
    elapsed_s: float = 0.0
    requested_at: float = 0.0  # time.perf_counter() when the rerun was requested (text_times count from it)
    page_script_hash: str = ""
    texts: list[str] = field(default_factory=list)  # every markdown/alert/text/progress text, in order of arrival
    text_times: list[float] = field(default_factory=list)  # seconds after the request at which each text came
    exceptions: list[str] = field(default_factory=list)
    elements: list[Element] = field(default_factory=list)  # the final element at each place of the page

    @property
    def ok(self) -> bool:
        """The run finished on its own and showed no exception."""
        return self.status == "FINISHED_SUCCESSFULLY" and not self.exceptions

    def widget_id(self, key_or_label: str, kind: str | None = None) -> str:
        """The id of the widget with this key (or, failing that, this label); KeyError if none."""
        widgets = [element for element in self.elements if element.widget_id and kind in (None, element.kind)]
        for wanted in (lambda element: element.key == key_or_label, lambda element: element.label == key_or_label):
            for element in widgets:
                if wanted(element):
                    return element.widget_id
        raise KeyError(f"no widget with key or label {key_or_label!r} among "
                       f"{[(element.kind, element.key or element.label) for element in widgets]}")

    def has_text(self, fragment: str) -> bool:
        """Whether any text the run showed (even one replaced later) contains `fragment`."""
        return any(fragment in text for text in self.texts)


def element_from_proto(element) -> Element:
    """The parts of an Element protobuf that a test or a load generator reads."""
    kind = element.WhichOneof("type") or ""
    body = getattr(element, kind, None)
    text = ""
    if kind in ("markdown", "alert", "text", "heading", "code", "toast"):
        text = getattr(body, "body", "")
    elif kind in ("progress", "spinner"):
        text = body.text
    elif kind == "exception":
        text = f"{body.type}: {body.message}"
    widget_id = getattr(body, "id", "") if kind in WIDGET_ELEMENT_TYPES else ""
    key = ""
    if widget_id.startswith("$$ID-"):
        tail = widget_id.split("-", maxsplit=2)[-1]
        key = "" if tail == "None" else tail
    return Element(kind=kind, text=text, widget_id=widget_id, label=getattr(body, "label", "") if widget_id else "",
                   key=key)


class StreamlitSession:
    """One browser tab's worth of Streamlit protocol over one cookie jar; a context manager (closes the socket)."""

    def __init__(self, base_url: str, *, timeout_s: float = 60):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: never a proxy from the environment
        self.session_id = ""
        self.query_string = ""
        self.page_script_hash = ""
        self.pages: dict[str, str] = {}  # url path -> page script hash, from the navigation message
        self._widget_states: dict[str, WidgetState] = {}
        self._socket = None
        self._inbox: queue.Queue = queue.Queue()
        self._reader: threading.Thread | None = None
        self._pending_since: float | None = None  # when the rerun whose result is not yet read was requested
        self._run = RunResult()  # the run being read, and its elements by place on the page (delta path)
        self._places: dict[tuple, Element] = {}

    # --- the connection -------------------------------------------------------------------------------------

    @property
    def cookies(self) -> dict[str, str]:
        """The cookie jar, name -> value (the XSRF cookie, a load balancer's affinity cookie)."""
        return {cookie.name: cookie.value for cookie in self.http.cookies}

    def _connect(self, resume_session_id: str = "") -> None:
        health = self.http.get(self.base_url + HEALTH_PATH, timeout=self.timeout_s)
        if health.status_code != 200:
            raise ProtocolError(f"{HEALTH_PATH} answered HTTP {health.status_code}: {health.text[:200]}")
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        subprotocols = ["streamlit", self.cookies.get(XSRF_COOKIE, "")]
        if resume_session_id:
            subprotocols.append(resume_session_id)
        cookie_header = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        self._socket = connect(f"{scheme}://{parts.netloc}{parts.path}{STREAM_PATH}", origin=self.base_url,
                               subprotocols=subprotocols, additional_headers={"Cookie": cookie_header},
                               open_timeout=self.timeout_s, max_size=None, proxy=None, compression=None,
                               legacy=True)
        for set_cookie in self._socket.response.headers.get_all("Set-Cookie"):
            for morsel in SimpleCookie(set_cookie).values():
                self.http.cookies.set(morsel.key, morsel.value, domain=parts.hostname or "", path=morsel["path"] or "/")
        self._inbox = queue.Queue()
        # Read every frame as it comes: a server whose send queue fills up drops the client.
        self._reader = threading.Thread(target=self._read_frames, args=(self._socket, self._inbox), daemon=True)
        self._reader.start()

    @staticmethod
    def _read_frames(socket, inbox: queue.Queue) -> None:
        try:
            for frame in socket:
                message = ForwardMsg()
                message.ParseFromString(frame)
                inbox.put((time.perf_counter(), message))
        except ConnectionClosed as closed:
            inbox.put((time.perf_counter(), closed))
            return
        inbox.put((time.perf_counter(), ConnectionClosed(None, None)))

    def _send(self, back_msg: BackMsg) -> None:
        if self._socket is None:
            raise ProtocolError("the session is not open")
        self._socket.send(back_msg.SerializeToString())

    def _next(self, deadline: float) -> tuple[float, ForwardMsg]:
        try:
            arrived, message = self._inbox.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            raise ProtocolError(f"no message from the server within {self.timeout_s:g} s") from None
        if isinstance(message, ConnectionClosed):
            raise ProtocolError(f"the server closed the stream ({message})")
        return arrived, message

    def _take_session_facts(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        if kind == "new_session":
            if message.new_session.HasField("initialize") and message.new_session.initialize.session_id:
                self.session_id = message.new_session.initialize.session_id
            self.page_script_hash = message.new_session.page_script_hash or self.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = message.page_info_changed.query_string
        elif kind == "navigation":
            self.pages.update({page.url_pathname: page.page_script_hash for page in message.navigation.app_pages})
            if message.navigation.page_script_hash:
                self.page_script_hash = message.navigation.page_script_hash

    # --- script runs ----------------------------------------------------------------------------------------

    def open(self, page: str = "", query: str = "") -> RunResult:
        """Connect and run the script once, as a browser opening `<base_url>/<page>?<query>` does."""
        self._connect()
        return self.rerun(page=page, query=query)

    def reconnect(self) -> RunResult:
        """Open a new websocket asking to resume this session (as the browser does after losing the stream), then
        rerun with the widget values held so far. A replica that does not know the session starts a new one."""
        self.close()
        self._connect(resume_session_id=self.session_id)
        return self.rerun()

    def rerun(self, page: str | None = None, query: str | None = None, widgets: dict | None = None, *,
              wait: bool = True) -> RunResult | None:
        """Request a script run: on `page` (a URL path such as "attributions"; None: the current page) with
        `query` (None: the query string the app last set) and these widget values (widget id -> value: True is a
        button press, sent for this run only; False, an int, a float or a str the widget's value from now on;
        anything else, a checkbox turned on included, a WidgetState). Returns the run's RunResult, or None with
        wait=False (read it with `wait()`)."""
        state = ClientState(query_string=self.query_string if query is None else query.lstrip("?"))
        if query is not None:
            self.query_string = state.query_string
        if page is None:
            state.page_script_hash = self.page_script_hash
        else:
            state.page_name = page
            state.page_script_hash = self.pages.get(page, "")
        state.context_info.url = f"{self.base_url}/{page or ''}"
        state.context_info.timezone = "UTC"
        state.context_info.locale = "en-US"
        triggers = []
        for widget_id, value in (widgets or {}).items():
            widget_state = self.widget_state(widget_id, value)
            if widget_state.WhichOneof("value") == "trigger_value":
                triggers.append(widget_state)
            else:
                self._widget_states[widget_id] = widget_state
        state.widget_states.widgets.extend(list(self._widget_states.values()) + triggers)
        self._drain()
        self._run, self._places = RunResult(), {}
        self._pending_since = time.perf_counter()
        self._send(BackMsg(rerun_script=state))
        return self.wait() if wait else None

    @staticmethod
    def widget_state(widget_id: str, value) -> WidgetState:
        """The WidgetState a browser sends for this value (see `rerun`)."""
        if isinstance(value, WidgetState):
            return value
        if value is True:  # a button press: sent for one run only
            return WidgetState(id=widget_id, trigger_value=True)
        if isinstance(value, bool):
            return WidgetState(id=widget_id, bool_value=value)
        if isinstance(value, int):
            return WidgetState(id=widget_id, int_value=value)
        if isinstance(value, float):
            return WidgetState(id=widget_id, double_value=value)
        if isinstance(value, str):
            return WidgetState(id=widget_id, string_value=value)
        raise TypeError(f"no widget state for a {type(value).__name__}; pass a WidgetState")

    def _drain(self) -> None:
        """Take in what arrived since the last run (session facts only): a new request starts a fresh read."""
        while True:
            try:
                _, message = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(message, ConnectionClosed):
                self._inbox.put((time.perf_counter(), message))
                return
            self._take_session_facts(message)

    def wait(self, until: Callable[[Element], bool] | None = None) -> RunResult:
        """Read the requested run to its `script_finished` (a run cut short by a newer request is skipped: its
        successor is the one that answers). With `until`, return as soon as an element for which it is true
        arrives, the run still going (status ""); a later `wait()` reads on from there."""
        if self._pending_since is None:
            raise ProtocolError("no script run was requested")
        requested = self._pending_since
        deadline = requested + self.timeout_s
        while True:
            arrived, message = self._next(deadline)
            self._take_session_facts(message)
            kind = message.WhichOneof("type")
            if kind == "new_session":  # a run starts: what came before belonged to an older one
                self._run, self._places = RunResult(), {}
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = element_from_proto(message.delta.new_element)
                self._places[tuple(message.metadata.delta_path)] = element
                if element.kind == "exception":
                    self._run.exceptions.append(element.text)
                elif element.text:
                    self._run.texts.append(element.text)
                    self._run.text_times.append(arrived - requested)
                if until is not None and until(element):
                    return RunResult(requested_at=requested, texts=list(self._run.texts),
                                     text_times=list(self._run.text_times), exceptions=list(self._run.exceptions),
                                     elements=self._elements())
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(message.script_finished)
                if status == "FINISHED_EARLY_FOR_RERUN":
                    continue
                result, self._run = self._run, RunResult()
                result.status = status
                result.requested_at = requested
                result.elapsed_s = arrived - requested
                result.page_script_hash = self.page_script_hash
                result.elements = self._elements()
                self._pending_since = None
                return result

    def _elements(self) -> list[Element]:
        return [self._places[place] for place in sorted(self._places)]

    def wait_for_text(self, fragment: str) -> RunResult:
        """Read the requested run until a text containing `fragment` arrives; the run goes on (read it with
        `wait()`). Its RunResult holds what came so far."""
        return self.wait(until=lambda element: fragment in element.text)

    def wait_for_widget(self, key_or_label: str) -> RunResult:
        """Read the requested run until the widget with this key or label arrives (see `wait_for_text`)."""
        return self.wait(until=lambda element: bool(element.widget_id) and key_or_label in (element.key,
                                                                                             element.label))

    # --- uploads --------------------------------------------------------------------------------------------

    def upload(self, uploader_widget_id: str, name: str, data: bytes, mime: str, *, wait: bool = True
               ) -> RunResult | None:
        """Put a file into the uploader with this widget id, as the browser does: ask the server for its upload
        URL over the websocket, PUT the file there, then rerun with the uploader's new state. Raises UploadError
        (with the HTTP status) when the PUT fails."""
        request_id = uuid.uuid4().hex
        request = BackMsg()
        request.file_urls_request.request_id = request_id
        request.file_urls_request.session_id = self.session_id
        request.file_urls_request.file_names.append(name)
        self._send(request)
        urls = self._file_urls(request_id)
        upload_url = urls.upload_url if "://" in urls.upload_url else self.base_url + urls.upload_url
        answer = self.http.put(upload_url, files={"file": (name, data, mime)},
                               headers={"X-Xsrftoken": self.cookies.get(XSRF_COOKIE, "")}, timeout=self.timeout_s)
        if answer.status_code not in (200, 204):
            raise UploadError(answer.status_code, answer.text[:300])
        state = WidgetState(id=uploader_widget_id)
        state.file_uploader_state_value.uploaded_file_info.append(
            UploadedFileInfo(name=name, size=len(data), file_id=urls.file_id,
                             file_urls=FileURLs(file_id=urls.file_id, upload_url=urls.upload_url,
                                                delete_url=urls.delete_url)))
        return self.rerun(widgets={uploader_widget_id: state}, wait=wait)

    def _file_urls(self, request_id: str) -> FileURLs:
        deadline = time.perf_counter() + self.timeout_s
        held = []  # messages of a run still going: put back, in order, for `wait()`
        try:
            while True:
                arrived, message = self._next(deadline)
                if message.WhichOneof("type") == "file_urls_response" and \
                        message.file_urls_response.response_id == request_id:
                    response = message.file_urls_response
                    if response.error_msg:
                        raise UploadError(0, response.error_msg)
                    return response.file_urls[0]
                held.append((arrived, message))
        finally:
            if held:
                rest = []
                while True:
                    try:
                        rest.append(self._inbox.get_nowait())
                    except queue.Empty:
                        break
                for item in held + rest:
                    self._inbox.put(item)

    def close(self) -> None:
        """Close the websocket (the server ends the session's script run and frees it)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def __enter__(self) -> StreamlitSession:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
        self.http.close()
