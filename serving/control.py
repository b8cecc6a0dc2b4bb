"""A running deployment: its supervisor (XML-RPC over the private unix socket) and its replicas' health."""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from . import config
from .config import HEALTH_PATH, Deployment

SUPERVISORD = Path(sys.executable).with_name("supervisord")  # installed beside this Python by requirements.txt


@dataclass(frozen=True)
class ProgramState:
    """One program as supervisord reports it."""

    name: str
    state: str  # RUNNING, STARTING, BACKOFF, EXITED, FATAL, STOPPED...
    pid: int  # 0 when not running


def supervisor(deployment: Deployment) -> xmlrpc.client.ServerProxy:
    """supervisord's XML-RPC interface for this deployment."""
    transport = SupervisorTransport(None, None, f"unix://{deployment.socket_path}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def programs(deployment: Deployment) -> dict[str, ProgramState]:
    """Every program of the deployment by name; raises OSError when supervisord is not running."""
    infos = supervisor(deployment).supervisor.getAllProcessInfo()
    return {info["name"]: ProgramState(info["name"], info["statename"], info["pid"]) for info in infos}


def balancer_statistics(deployment: Deployment) -> dict[str, dict[str, str]]:
    """HAProxy's statistics (`show stat` on its private socket) for each replica by name: its state ("status":
    UP, DOWN...), its requests so far ("req_tot") and the rest of HAProxy's columns."""
    with socket.socket(socket.AF_UNIX) as stats:
        stats.connect(str(deployment.runtime / "haproxy.sock"))
        stats.sendall(b"show stat\n")
        answer = b""
        while chunk := stats.recv(65536):
            answer += chunk
    rows = csv.DictReader(io.StringIO(answer.decode().lstrip("# ")))
    return {row["svname"]: row for row in rows if row["pxname"] == "replicas" and row["svname"] != "BACKEND"}


def healthy(port: int, timeout_s: float = 2.0) -> bool:
    """Whether the replica on this loopback port answers its health check."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=timeout_s) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (OSError, urllib.error.URLError):
        return False


def shutdown(deployment: Deployment) -> bool:
    """Ask supervisord to stop every program and exit; False when it was not running."""
    try:
        supervisor(deployment).supervisor.shutdown()
    except (OSError, xmlrpc.client.Fault):
        return False
    return True


def ready(deployment: Deployment) -> bool:
    """Whether every replica and the load balancer in front of them answer their health check."""
    return all(healthy(port) for port in deployment.replica_ports) and healthy(deployment.port)


@contextmanager
def running(deployment: Deployment, start_timeout_s: float = 180,
            environment: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """The deployment written and run by supervisord in the foreground (with `environment` added to this
    process's), yielded once every replica and the load balancer answer; afterwards supervisord stops every
    program, and one that outlives it is killed. Raises TimeoutError, with the ends of the logs, when the start
    takes longer than `start_timeout_s`."""
    config.write(deployment)
    with open(deployment.runtime / "supervisord.out", "w") as output:
        process = subprocess.Popen([str(SUPERVISORD), "-c", str(deployment.supervisor_path)], stdout=output,
                                   stderr=subprocess.STDOUT, env={**os.environ, **(environment or {})})
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not (process.poll() is None and ready(deployment)):
            if process.poll() is not None or time.monotonic() > deadline:
                logs = "".join(f"\n--- {path.name}:\n{path.read_text(errors='replace')[-1500:]}"
                               for path in sorted(deployment.runtime.glob("*.log")))
                raise TimeoutError(f"the deployment did not start within {start_timeout_s} s{logs}")
            time.sleep(0.5)
        yield process
    finally:
        try:
            pids = {state.pid for state in programs(deployment).values() if state.pid}
        except OSError:
            pass
        process.terminate()  # supervisord stops every program, then exits
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pid in pids:  # a program supervisord could not stop in time
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
