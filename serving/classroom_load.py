"""A class of simulated students for Locust, each speaking Streamlit's own protocol (serving.streamlit_client): no
browser, so that on a small machine the load is the server's and not the browsers'. What a student does is in
serving.classroom; each action is reported to Locust as a request named after it, and fails when its run does not
finish successfully, shows an exception, lacks the text it must show, or gets no answer within ACTION_TIMEOUT_S.

Two scenarios: the round (Student: the lesson's pages in turn, for as long as the run lasts) and the gallery
(GalleryStudent: joins one room by its code and sends one photo).

Two ways to run it:
- `python -m locust -f serving/classroom_load.py --host http://127.0.0.1:8500 Student` from the repository root
  (Locust's own web page, or --headless; `GalleryStudent --room-code CODE` for the gallery);
- `python -m serving.classroom_load --host URL --users S --seconds T --json out.json`: headless, bounded, and
  a summary with every action's time (what bench/classroom.py and the load test read). With `--scenario gallery
  --room-code CODE --spawn-rate R`, S students join the room R per second, and the run ends once each has sent
  its photo (or failed) or after T seconds; the summary adds each student's start and "Sent" wall-clock times.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from locust import User, between, constant, events, task
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.exception import StopUser

from serving.classroom import (ACTION_TIMEOUT_S, GALLERY_NOTICE, GALLERY_NOTICE_OK_KEY, GALLERY_PAGE, GALLERY_SENT,
                               GALLERY_UPLOAD_KEY, PHOTOS, THINK_S, UPLOAD_KEY, VISITS, student_photo, summarize)
from serving.streamlit_client import ProtocolError, RunResult, StreamlitSession

REQUEST_TYPE = "rerun"
SETTLED_CHECK_S = 0.5  # how often a bounded run looks whether every gallery student is through

_photo_numbers = itertools.count()
_student_numbers = itertools.count()
actions: list[dict] = []  # every action of this process: kind, seconds, finished (status seen), error
gallery_students: list[dict] = []  # one per GalleryStudent: its number, start and "Sent" wall-clock times, done


@events.init_command_line_parser.add_listener
def _room_code_option(parser) -> None:
    parser.add_argument("--room-code", default="", help="the gallery room's join code (GalleryStudent)")


class RunFailed(Exception):
    """A script run that finished but not successfully, or showed an exception."""


class ClassroomUser(User):
    """What every simulated student shares: its actions timed, recorded and reported to Locust."""

    abstract = True
    record_fields: dict = {}  # added to each of its action records

    def on_stop(self) -> None:
        self.session.close()

    def _act(self, kind: str, action, must_show: str | None = None) -> RunResult | None:
        started = time.perf_counter()
        result, error = None, None
        try:
            result = action()
            if not result.ok:
                error = RunFailed(f"{result.status}: {'; '.join(result.exceptions)[:300]}")
            elif must_show is not None and not result.has_text(must_show):
                error = RunFailed(f"no {must_show!r}; its last texts: {result.texts[-3:]}")
        except (ProtocolError, KeyError, OSError) as failure:  # no answer, a failed upload, a lost connection
            error = failure
        seconds = result.elapsed_s if result is not None else time.perf_counter() - started
        actions.append({"kind": kind, "seconds": seconds, "finished": bool(result and result.status),
                        "error": None if error is None else f"{type(error).__name__}: {error}"[:400],
                        **self.record_fields})
        self.environment.events.request.fire(request_type=REQUEST_TYPE, name=kind, response_time=seconds * 1000,
                                             response_length=len(result.texts) if result else 0, exception=error,
                                             context={})
        return result if error is None else None


class Student(ClassroomUser):
    """One student's browser tab, as protocol messages."""

    wait_time = between(*THINK_S)

    def on_start(self) -> None:
        self.session = StreamlitSession(self.host, timeout_s=ACTION_TIMEOUT_S)
        self.visits = itertools.cycle(VISITS)
        first = self._act("open", lambda: self.session.open(page="classify"))
        if first is None:
            raise StopUser()
        photo = PHOTOS[next(_photo_numbers) % len(PHOTOS)]
        uploaded = self._act("upload", lambda: self.session.upload(first.widget_id(UPLOAD_KEY), photo.name,
                                                                   photo.read_bytes(), "image/jpeg"))
        if uploaded is None:  # without its photo the student would only meet "choose a picture" pages
            raise StopUser()

    @task
    def visit(self) -> None:
        """The next page of the round."""
        kind, page, query = next(self.visits)
        self._act(kind, lambda: self.session.rerun(page=page, query=query))


def finished_at(result: RunResult) -> float:
    """The wall-clock time (time.time()) at which this run's `script_finished` arrived."""
    return time.time() - (time.perf_counter() - (result.requested_at + result.elapsed_s))


class GalleryStudent(ClassroomUser):
    """A student's phone in the gallery: joins the room with its code, accepts the notice, sends one photo of its
    own. Then it stays, silent, until the run ends: a user that stops is replaced by a new one while Locust is
    still spawning, and the class would grow past its size."""

    wait_time = constant(1.0)

    def on_start(self) -> None:
        number = next(_student_numbers)
        self.record_fields = {"student": number}
        self.student = {"student": number, "started_at": time.time(), "sent_at": None, "done": False}
        gallery_students.append(self.student)
        self.session = StreamlitSession(self.host, timeout_s=ACTION_TIMEOUT_S)
        try:
            self._send_one_photo(number, self.environment.parsed_options.room_code)
        finally:
            self.student["done"] = True
            self.session.close()  # the phone leaves the page, as the student puts it away

    def _send_one_photo(self, number: int, room_code: str) -> None:
        notice = self._act("open", lambda: self.session.open(page=GALLERY_PAGE, query=f"code={room_code}"),
                           must_show=GALLERY_NOTICE)
        if notice is None:
            return
        accepted = self._act("accept_notice", lambda: self.session.rerun(
            widgets={notice.widget_id(GALLERY_NOTICE_OK_KEY): True}))
        if accepted is None:
            return
        sent = self._act("send_photo", lambda: self.session.upload(
            accepted.widget_id(GALLERY_UPLOAD_KEY), f"photo_{number}.jpg", student_photo(number), "image/jpeg"),
                         must_show=GALLERY_SENT)
        if sent is not None:
            self.student["sent_at"] = finished_at(sent)

    @task
    def stay(self) -> None:
        """Nothing more: one photo per student."""

    @staticmethod
    def everyone_through(users: int) -> bool:
        """Whether all `users` students have sent their photo or failed."""
        return sum(1 for student in gallery_students if student["done"]) >= users


SCENARIOS = {"round": Student, "gallery": GalleryStudent}


def run(host: str, users: int, seconds: float, spawn_rate: float | None = None, scenario: str = "round",
        room_code: str = "") -> dict:
    """S students of this scenario against `host` for `seconds` (arriving at `spawn_rate` per second, by default
    over the first few seconds), then stopped after their current action; the summary of every action. A gallery
    run ends early once every student is through, and its summary has each student's record too."""
    import gevent

    actions.clear()
    gallery_students.clear()
    user_class = SCENARIOS[scenario]
    # Locust's own options, as its command line would parse them: its runner reads some of them
    options = get_parser(default_config_files=[]).parse_args(["--headless", "--room-code", room_code])
    environment = Environment(user_classes=[user_class], host=host, stop_timeout=ACTION_TIMEOUT_S,
                              parsed_options=options)
    runner = environment.create_local_runner()
    started = time.perf_counter()
    runner.start(users, spawn_rate=spawn_rate or max(1.0, users / 5))
    if user_class is GalleryStudent:
        while time.perf_counter() - started < seconds and not GalleryStudent.everyone_through(users):
            gevent.sleep(SETTLED_CHECK_S)
    else:
        gevent.sleep(seconds)
    runner.quit()  # each student finishes the action it is in (within stop_timeout), then stops
    summary = {**summarize(list(actions), time.perf_counter() - started, users), "records": list(actions)}
    if user_class is GalleryStudent:
        summary["students"] = [{key: value for key, value in student.items() if key != "done"}
                               for student in gallery_students]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.classroom_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True, help="the app's URL (the load balancer's, or one replica's)")
    parser.add_argument("--users", type=int, default=5, help="students at once")
    parser.add_argument("--seconds", type=float, default=30, help="how long they work")
    parser.add_argument("--json", default=None, help="write the summary (with every action) here")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="round",
                        help="round: the lesson's pages in turn; gallery: one photo each into one room")
    parser.add_argument("--room-code", default="", help="the gallery room's join code (--scenario gallery)")
    parser.add_argument("--spawn-rate", type=float, default=None,
                        help="students arriving per second (default: all within the first 5 s)")
    arguments = parser.parse_args(argv)
    if arguments.users < 1 or arguments.seconds <= 0:
        parser.error("--users must be at least 1 and --seconds positive")
    if arguments.spawn_rate is not None and arguments.spawn_rate <= 0:
        parser.error("--spawn-rate must be positive")
    if arguments.scenario == "gallery" and not arguments.room_code:
        parser.error("--scenario gallery needs --room-code")
    summary = run(arguments.host, arguments.users, arguments.seconds, arguments.spawn_rate, arguments.scenario,
                  arguments.room_code)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(summary, indent=1))
    print(json.dumps({key: value for key, value in summary.items() if key not in ("records", "students")},
                     indent=1))
    unsent = sum(1 for student in summary.get("students", []) if student["sent_at"] is None)
    return 0 if summary["errors"] == 0 and summary["unfinished"] == 0 and unsent == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
