"""Soak test: N browser sessions use the real app at once for M minutes; how fast and how big does the server get?

Starts `streamlit run app.py` on 127.0.0.1 (a free port), drives it with Chromium through Playwright (one
browser context per session, each with its own Streamlit session), and stops both by itself. Each session
loops: upload a new picture on the landing page (Classify), wait until its results render, then visit every
other page and the landing page again, each time waiting until the app has finished running. Reported:
actions served, errors (timeouts, exceptions or error boxes on a page), latency percentiles per kind of
action (from the click or upload until the browser received the end of the last script run it set off; the
browsers share the server's 2 cores, so this is an upper bound on the server's time), and the server's
resident memory (psutil, server process and children: start, after warm-up, peak, end). Not part of the test
suite: run it by hand.

    .venv/bin/python bench/soak.py --sessions 8 --minutes 2

Needs Debian's chromium (`apt-get install -y chromium`); results go to bench/results/soak-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from PIL import Image
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from _quiet import quiet_logs

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
MAX_SESSIONS, MAX_MINUTES = 32, 30  # bounds: a soak never runs away
ACTION_TIMEOUT_S = 180  # one page run on a busy 2-core machine (the FLOPs page times every unit)
STARTUP_TIMEOUT_S = 120
SETTLE_S = 0.5  # a run counts as finished when no new run starts within this long
MAX_SCREENSHOTS = 5  # of pages that failed, for diagnosis
# Rendered: the browser has replaced every element of the previous run (none left marked stale).
RENDERED = "() => !document.querySelector('[data-stale=\"true\"]')"
EXCEPTION = '[data-testid="stMain"] [data-testid="stException"]'
ERROR_ALERT = '[data-testid="stMain"] [data-testid="stAlertContentError"]'
UPLOAD_INPUT = '[data-testid="stSidebar"] [data-testid="stFileUploaderDropzoneInput"]'


@dataclass
class Stats:
    """Latencies per kind of action and the errors, shared by all sessions (one event loop: no locks)."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def record(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    @property
    def served(self) -> int:
        return sum(len(values) for values in self.latencies.values())


class MemoryMonitor(threading.Thread):
    """Samples the resident memory of the server process and its children every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.process, self.interval = psutil.Process(pid), interval
        self.peak_mb = self.last_mb = 0.0
        self.stopped = threading.Event()

    def sample(self) -> float:
        try:
            processes = [self.process, *self.process.children(recursive=True)]
            total = sum(p.memory_info().rss for p in processes if p.is_running())
        except psutil.Error:
            return self.last_mb
        self.last_mb = total / 2**20
        self.peak_mb = max(self.peak_mb, self.last_mb)
        return self.last_mb

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.sample()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far."""
        times = self.process.cpu_times()
        return times.user + times.system


def machine_cpu_seconds() -> float:
    """CPU time (all but idle and I/O wait) the whole machine has used so far, summed over its cores."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def find_chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    sys.exit("soak: Chromium not found at " + " or ".join(CHROMIUM_CANDIDATES) + "; install it with "
             "`apt-get install -y chromium`")


def page_titles() -> list[str]:
    """The page titles app.py shows in the navigation, landing page first."""
    titles = re.findall(r'st\.Page\([^)]*?title="([^"]+)"', (ROOT / "app.py").read_text())
    if not titles:
        sys.exit("soak: found no st.Page(..., title=...) entries in app.py")
    return titles


def picture(session: int, round_number: int) -> bytes:
    """A different 320x240 JPEG for every upload (smooth colours, a block and noise), so nothing is cached."""
    rng = np.random.default_rng(session * 100_003 + round_number)
    y, x = np.mgrid[0:240, 0:320] / 240.0
    phases = rng.uniform(0, 6.3, 3)
    pixels = np.stack([np.sin(x * 3 + phases[0]), np.cos(y * 4 + phases[1]), np.sin((x - y) * 5 + phases[2])], -1)
    pixels = (pixels + 1) * 110 + rng.normal(0, 10, pixels.shape)
    top, left = rng.integers(0, 140), rng.integers(0, 200)
    pixels[top:top + 100, left:left + 120] = rng.uniform(0, 255, 3)
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    """`streamlit run app.py` on loopback; returns once its health endpoint answers."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"the server did not answer within {STARTUP_TIMEOUT_S} s; see {log_path}")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 20 s (Streamlit waits for open sessions)."""
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


class ScriptRuns:
    """The app's script runs as one browser page receives them on Streamlit's websocket: each run starts with a
    `new_session` message and ends with `script_finished`. Read from the messages, not the page, so that no run is
    missed, however short, and a run that has not started yet is never taken for a finished one."""

    def __init__(self, page):
        self.events: list[tuple[float, str]] = []  # (perf_counter time, "start" or "end")
        page.on("websocket", lambda socket: socket.on("framereceived", self._on_frame))

    def _on_frame(self, payload) -> None:
        if isinstance(payload, str):
            return
        message = ForwardMsg()
        message.ParseFromString(payload)
        kind = message.WhichOneof("type")
        if kind in ("new_session", "script_finished"):
            self.events.append((time.perf_counter(), "start" if kind == "new_session" else "end"))

    def finished_after(self, since: float) -> float | None:
        """When the runs begun after `since` had all ended (no new run for SETTLE_S since), else None."""
        if not any(t > since and kind == "start" for t, kind in self.events):
            return None
        last_time, last_kind = self.events[-1]
        if last_kind != "end" or time.perf_counter() - last_time < SETTLE_S:
            return None
        return last_time

    async def wait(self, page, since: float) -> float:
        """Seconds from `since` until the runs it set off had ended, once the page has rendered them;
        TimeoutError after ACTION_TIMEOUT_S."""
        deadline = since + ACTION_TIMEOUT_S
        while (finished := self.finished_after(since)) is None:
            if time.perf_counter() > deadline:
                recent = [(round(t - since, 2), kind) for t, kind in self.events[-4:]]
                raise TimeoutError(f"no finished run within {ACTION_TIMEOUT_S} s (recent runs, s after the "
                                   f"action: {recent})")
            await asyncio.sleep(0.05)
        await page.wait_for_function(RENDERED, polling=100, timeout=ACTION_TIMEOUT_S * 1000)
        return finished - since


async def check_page(page, what: str) -> None:
    """Raise if the page shows an exception or an error box (a good picture must never produce one)."""
    for selector, kind in ((EXCEPTION, "exception"), (ERROR_ALERT, "error")):
        element = await page.query_selector(selector)
        if element is not None:
            raise RuntimeError(f"{what}: the page shows an {kind}: {(await element.inner_text())[:200]!r}")


async def navigate(page, runs: ScriptRuns, title: str) -> float:
    since = time.perf_counter()
    await page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    seconds = await runs.wait(page, since)
    await check_page(page, f"page {title!r}")
    return seconds


async def upload(page, runs: ScriptRuns, name: str, data: bytes) -> float:
    """Upload on the landing page; done when the app has finished and its caption names the file."""
    since = time.perf_counter()
    await page.set_input_files(UPLOAD_INPUT, files=[{"name": name, "mimeType": "image/jpeg", "buffer": data}])
    seconds = await runs.wait(page, since)
    await page.get_by_test_id("stMain").get_by_text(name, exact=True).first.wait_for(timeout=ACTION_TIMEOUT_S * 1000)
    await check_page(page, f"upload {name}")
    return seconds


async def run_session(browser, index: int, base_url: str, titles: list[str], deadline: float, stats: Stats,
                      max_rounds: int) -> None:
    """One user: open the app, then upload-and-visit-every-page rounds until the deadline."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_S * 1000)
    runs = ScriptRuns(page)
    try:
        since = time.perf_counter()
        await page.goto(base_url)
        stats.record("open", await runs.wait(page, since))
        for round_number in range(max_rounds):
            # Each round starts and ends on the landing page (clicking the page one is on reruns nothing).
            name = f"s{index}-r{round_number}.jpg"
            steps = [("upload", lambda: upload(page, runs, name, picture(index, round_number)))]
            steps += [("page " + title, lambda title=title: navigate(page, runs, title))
                      for title in titles[1:] + (titles[:1] if len(titles) > 1 else [])]
            for kind, step in steps:
                if time.perf_counter() >= deadline:
                    return
                try:
                    stats.record(kind, await step())
                except Exception as error:  # a timeout or an error on the page: count it, reload, go on
                    stats.errors.append(f"session {index}, round {round_number}, {kind}: "
                                        f"{type(error).__name__}: {str(error).splitlines()[0][:300]}")
                    if len(stats.errors) <= MAX_SCREENSHOTS:
                        await page.screenshot(path=RESULTS_DIR / f"soak-error-{len(stats.errors)}.png", full_page=True)
                    since = time.perf_counter()
                    await page.goto(base_url)
                    await runs.wait(page, since)
                    break
    finally:
        await context.close()


async def drive(base_url: str, sessions: int, minutes: float, max_rounds: int, stats: Stats,
                monitor: MemoryMonitor) -> dict:
    from playwright.async_api import async_playwright

    titles = page_titles()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=find_chromium(),
                                                   args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            # Warm-up, not counted: one session opens the app (models loaded and verified), uploads a picture
            # and visits every page once, so once-per-process work (FLOPs timing, the shuffle ablation on
            # CIFAR-10) is not charged to the first sessions.
            warm_up = Stats()
            warm_up_started = time.perf_counter()
            await run_session(browser, MAX_SESSIONS, base_url, titles, float("inf"), warm_up, 1)  # its own pictures
            warm_up_s = time.perf_counter() - warm_up_started
            if warm_up.errors:
                raise RuntimeError(f"warm-up failed: {warm_up.errors}")
            after_warm_up_mb = monitor.sample()
            server_cpu, machine_cpu = monitor.cpu_seconds(), machine_cpu_seconds()
            started = time.perf_counter()
            deadline = started + minutes * 60
            await asyncio.wait_for(
                asyncio.gather(*(run_session(browser, i, base_url, titles, deadline, stats, max_rounds)
                                 for i in range(sessions))),
                timeout=minutes * 60 + 2 * ACTION_TIMEOUT_S)
            elapsed = time.perf_counter() - started
            server_cpu, machine_cpu = monitor.cpu_seconds() - server_cpu, machine_cpu_seconds() - machine_cpu
        finally:
            await browser.close()
    return {"pages": titles, "warm_up_s": warm_up_s, "warm_up_latencies": warm_up.latencies,
            "after_warm_up_mb": after_warm_up_mb, "elapsed_s": elapsed,
            "cpu_s": {"server": server_cpu, "machine": machine_cpu, "available": elapsed * os.cpu_count()}}


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values)
    return {"count": int(array.size), "p50_s": float(np.percentile(array, 50)),
            "p90_s": float(np.percentile(array, 90)), "p99_s": float(np.percentile(array, 99)),
            "max_s": float(array.max())}


def main(argv: list[str] | None = None) -> int:
    quiet_logs()  # the server logs to its own file; this process prints only its figures
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help=f"browser sessions at once (1-{MAX_SESSIONS})")
    parser.add_argument("--minutes", type=float, default=2.0, help=f"how long they run (at most {MAX_MINUTES})")
    parser.add_argument("--max-rounds", type=int, default=1000, help="upload-and-visit rounds per session at most")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS or not 0 < args.minutes <= MAX_MINUTES or args.max_rounds < 1:
        parser.error(f"--sessions must be 1-{MAX_SESSIONS}, --minutes in (0, {MAX_MINUTES}], --max-rounds >= 1")
    find_chromium()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    port = free_port()
    server = start_server(port, RESULTS_DIR / f"soak-{stamp}-server.log")
    monitor = MemoryMonitor(server.pid)
    start_mb = monitor.sample()
    monitor.start()
    stats = Stats()
    try:
        run = asyncio.run(drive(f"http://127.0.0.1:{port}/", args.sessions, args.minutes, args.max_rounds, stats,
                                monitor))
    finally:
        end_mb = monitor.sample()
        monitor.stopped.set()
        stop_server(server)
    all_latencies = [value for values in stats.latencies.values() for value in values]
    report = {
        "sessions": args.sessions, "minutes": args.minutes, "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(), **run,
        "served": stats.served, "errors": len(stats.errors), "error_messages": stats.errors[:50],
        "throughput_per_min": stats.served / (run["elapsed_s"] / 60),
        "latency_all": percentiles(all_latencies) if all_latencies else None,
        "latency_by_action": {kind: percentiles(values) for kind, values in sorted(stats.latencies.items())},
        "server_memory_mb": {"start": start_mb, "after_warm_up": run["after_warm_up_mb"],
                             "peak": monitor.peak_mb, "end": end_mb},
    }
    out = RESULTS_DIR / f"soak-{stamp}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"warm-up (one session, every page once): {run['warm_up_s']:.0f} s")
    print(f"{args.sessions} sessions for {run['elapsed_s'] / 60:.1f} min on {os.cpu_count()} CPUs "
          f"(load average at the end {os.getloadavg()[0]:.1f}): {stats.served} actions served, "
          f"{len(stats.errors)} errors")
    for kind, values in report["latency_by_action"].items():
        print(f"  {kind:28s} n={values['count']:4d}  p50 {values['p50_s']:6.2f} s  p90 {values['p90_s']:6.2f} s  "
              f"p99 {values['p99_s']:6.2f} s  max {values['max_s']:6.2f} s")
    memory = report["server_memory_mb"]
    print(f"  server memory: start {memory['start']:.0f} MB, after warm-up {memory['after_warm_up']:.0f} MB, "
          f"peak {memory['peak']:.0f} MB, end {memory['end']:.0f} MB")
    cpu = run["cpu_s"]
    print(f"  CPU time while the sessions ran: server {cpu['server']:.0f} s, whole machine {cpu['machine']:.0f} s "
          f"of {cpu['available']:.0f} s available: the server had {cpu['server'] / max(cpu['machine'], 1e-9):.0%}, "
          f"the browsers and the rest {1 - cpu['server'] / max(cpu['machine'], 1e-9):.0%}")
    for message in stats.errors[:10]:
        print("  error:", message)
    print(f"  report: {out}")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
