"""A class of simulated students for Locust, each speaking Streamlit's own protocol (serving.streamlit_client): no
browser, so that on a small machine the load is the server's and not the browsers'. What a student does is in
serving.classroom; each action is reported to Locust as a request named after it, and fails when its run does not
finish successfully, shows an exception, or gets no answer within ACTION_TIMEOUT_S.

Two ways to run it:
- `python -m locust -f serving/classroom_load.py --host http://127.0.0.1:8500` from the repository root
  (Locust's own web page, or --headless);
- `python -m serving.classroom_load --host URL --users S --seconds T --json out.json`: headless, bounded, and
  a summary with every action's time (what bench/classroom.py and the load test read).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from locust import User, between, task
from locust.env import Environment
from locust.exception import StopUser

from serving.classroom import ACTION_TIMEOUT_S, PHOTOS, THINK_S, UPLOAD_KEY, VISITS, summarize
from serving.streamlit_client import ProtocolError, StreamlitSession

REQUEST_TYPE = "rerun"

_photo_numbers = itertools.count()
actions: list[dict] = []  # every action of this process: kind, seconds, finished (status seen), error


class RunFailed(Exception):
    """A script run that finished but not successfully, or showed an exception."""


class Student(User):
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

    def on_stop(self) -> None:
        self.session.close()

    def _act(self, kind: str, action):
        started = time.perf_counter()
        result, error = None, None
        try:
            result = action()
            if not result.ok:
                error = RunFailed(f"{result.status}: {'; '.join(result.exceptions)[:300]}")
        except (ProtocolError, KeyError, OSError) as failure:  # no answer, a failed upload, a lost connection
            error = failure
        seconds = result.elapsed_s if result is not None else time.perf_counter() - started
        actions.append({"kind": kind, "seconds": seconds, "finished": bool(result and result.status),
                        "error": None if error is None else f"{type(error).__name__}: {error}"[:400]})
        self.environment.events.request.fire(request_type=REQUEST_TYPE, name=kind, response_time=seconds * 1000,
                                             response_length=len(result.texts) if result else 0, exception=error,
                                             context={})
        return result if error is None else None


def run(host: str, users: int, seconds: float, spawn_rate: float | None = None) -> dict:
    """S students against `host` for `seconds` (arriving over the first few seconds), then stopped after their
    current action; the summary of every action."""
    import gevent

    actions.clear()
    environment = Environment(user_classes=[Student], host=host, stop_timeout=ACTION_TIMEOUT_S)
    runner = environment.create_local_runner()
    started = time.perf_counter()
    runner.start(users, spawn_rate=spawn_rate or max(1.0, users / 5))
    gevent.sleep(seconds)
    runner.quit()  # each student finishes the action it is in (within stop_timeout), then stops
    return {**summarize(list(actions), time.perf_counter() - started, users), "records": list(actions)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.classroom_load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", required=True, help="the app's URL (the load balancer's, or one replica's)")
    parser.add_argument("--users", type=int, default=5, help="students at once")
    parser.add_argument("--seconds", type=float, default=30, help="how long they work")
    parser.add_argument("--json", default=None, help="write the summary (with every action) here")
    arguments = parser.parse_args(argv)
    if arguments.users < 1 or arguments.seconds <= 0:
        parser.error("--users must be at least 1 and --seconds positive")
    summary = run(arguments.host, arguments.users, arguments.seconds)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(summary, indent=1))
    print(json.dumps({key: value for key, value in summary.items() if key != "records"}, indent=1))
    return 0 if summary["errors"] == 0 and summary["unfinished"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
