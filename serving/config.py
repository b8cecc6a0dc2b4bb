"""The deployment `make serve` runs, as files in one runtime folder: Streamlit replicas on loopback ports behind
HAProxy, all kept running by supervisord.

Why each setting (Streamlit's architecture: a session's uploads and media live in the memory of the replica
that serves its websocket):
- affinity by a cookie HAProxy inserts, not by client IP: a classroom behind one NAT would land on one replica;
- one cookie secret for all replicas (Streamlit's XSRF cookie is signed with it), made once per deployment in a
  file only its owner reads, and handed to each replica through the environment, never on a command line;
- active health checks on /_stcore/health every second, so that a replica that died is out of rotation within
  about two seconds, and `option redispatch` sends its students to a live one at once;
- long client, server and tunnel timeouts: a websocket that idles through a lecture stays open;
- no body limit: HAProxy sets none by default, so uploads are bounded by Streamlit's server.maxUploadSize alone.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 8500  # the load balancer's; `make run` keeps Streamlit's 8501
FIRST_REPLICA_PORT = 8511
DEFAULT_RUNTIME = ROOT / ".serve"  # generated files, secret, logs and sockets (git-ignored)
# One replica held 1,345 MB after a soak's warm-up and peaked at 1,686 MB: each gets this much or is not started.
REPLICA_MEMORY_BYTES = 1700 * 2**20
COOKIE_NAME = "LENS_REPLICA"
HEALTH_PATH = "/_stcore/health"
CHECK_INTERVAL_MS = 1000
CHECK_FALL = 2  # failed checks in a row before a replica is out: a dead one is noticed within ~2 s
CHECK_RISE = 2
# A live replica busy with a class answers its health check late; without this HAProxy waits only `inter` (1 s)
# and takes a working replica out, losing its students' uploads. A dead one refuses at once, so this costs nothing.
CHECK_TIMEOUT = "5s"
CONNECT_TIMEOUT = "2s"  # replicas are on loopback
CLIENT_TIMEOUT = "5m"  # a slow phone sending a 25 MB photo
SERVER_TIMEOUT = "5m"  # a replica's answer to one HTTP request
TUNNEL_TIMEOUT = "2h"  # an idle websocket (a student listening) stays open through a lecture
RETRIES = 3
SECRET_FILE = "cookie_secret"
HAPROXY_FILE = "haproxy.cfg"
SUPERVISOR_FILE = "supervisord.conf"
SOCKET_FILE = "supervisor.sock"
HAPROXY_PROGRAM = "haproxy"
HAPROXY = "/usr/sbin/haproxy"  # Debian's package
# Read by the replicas (shufflenet_viz.runtime and ui.models); set by `serving replica`.
THREADS_ENV = "SHUFFLENET_LENS_TORCH_THREADS"
OWNER_INSTALL_ENV = "SHUFFLENET_LENS_OWNER_INSTALL"
SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"


@dataclass(frozen=True)
class Deployment:
    """Where each part listens and how the replicas are run."""

    runtime: Path
    address: str  # the load balancer's listening address (the replicas listen on 127.0.0.1 only)
    port: int
    replica_ports: tuple[int, ...]
    threads: int  # torch threads per replica
    affinity: bool = True  # False only to show what breaks without the cookie
    python: str = sys.executable
    haproxy: str = HAPROXY

    @property
    def replica_names(self) -> tuple[str, ...]:
        return tuple(f"replica-{index + 1}" for index in range(len(self.replica_ports)))

    @property
    def secret_path(self) -> Path:
        return self.runtime / SECRET_FILE

    @property
    def haproxy_path(self) -> Path:
        return self.runtime / HAPROXY_FILE

    @property
    def supervisor_path(self) -> Path:
        return self.runtime / SUPERVISOR_FILE

    @property
    def socket_path(self) -> Path:
        return self.runtime / SOCKET_FILE

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.address in ("0.0.0.0", "::", "") else self.address
        return f"http://{shown}:{self.port}"


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask, lowered by a cgroup CPU limit (a container's)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = _cgroup_cpu_limit()
    return max(1, min(cpus, int(limit)) if limit else cpus)


def _cgroup_cpu_limit() -> float | None:
    try:  # cgroup v2: "max 100000" (none) or "200000 100000" (two CPUs)
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_memory_bytes() -> int:
    """Memory available to new processes: the kernel's MemAvailable, lowered by a cgroup v2 limit."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            available = min(available or int(limit), int(limit))
    except (OSError, ValueError):
        pass
    return available if available is not None else REPLICA_MEMORY_BYTES


def replica_count(cpus: int, memory_bytes: int) -> int:
    """One replica per CPU, as many as the memory holds at a replica's peak, and at least one."""
    return max(1, min(cpus, memory_bytes // REPLICA_MEMORY_BYTES))


def threads_per_replica(cpus: int, replicas: int) -> int:
    """torch threads for each replica: the CPUs shared out, at least one."""
    return max(1, cpus // replicas)


def plan(runtime: Path = DEFAULT_RUNTIME, *, port: int = DEFAULT_PORT, address: str = "127.0.0.1",
         replicas: int | None = None, replica_ports: tuple[int, ...] | None = None, affinity: bool = True,
         cpus: int | None = None, memory_bytes: int | None = None) -> Deployment:
    """A deployment: `replicas` (default: `replica_count` of this machine) on consecutive ports from
    FIRST_REPLICA_PORT unless `replica_ports` names them."""
    cpus = cpus or available_cpus()
    if replica_ports is None:
        count = replicas or replica_count(cpus, memory_bytes or available_memory_bytes())
        replica_ports = tuple(range(FIRST_REPLICA_PORT, FIRST_REPLICA_PORT + count))
    if not replica_ports:
        raise ValueError("a deployment needs at least one replica")
    if port in replica_ports or len(set(replica_ports)) != len(replica_ports):
        raise ValueError(f"the ports must differ: load balancer {port}, replicas {list(replica_ports)}")
    return Deployment(Path(runtime).resolve(), address, port, tuple(replica_ports),
                      threads_per_replica(cpus, len(replica_ports)), affinity,
                      haproxy=shutil.which("haproxy") or HAPROXY)


def cookie_secret(path: Path) -> str:
    """The deployment's cookie secret, made at the first call (64 hex digits, file mode 600) and read after."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # an existing secret that someone made readable is made private again
        secret = path.read_text().strip()
        if len(secret) < 32:
            raise ValueError(f"{path} holds no usable secret (under 32 characters): delete it to make a new one")
        return secret
    secret = secrets.token_hex(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")
    return secret


def haproxy_config(deployment: Deployment) -> str:
    """HAProxy's configuration: one frontend, the replicas in one backend with the affinity cookie and health
    checks."""
    servers = []
    for name, port in zip(deployment.replica_names, deployment.replica_ports):
        cookie = f" cookie {name}" if deployment.affinity else ""
        servers.append(f"    server {name} 127.0.0.1:{port} check{cookie}")
    persistence = [f"    cookie {COOKIE_NAME} insert indirect nocache httponly"] if deployment.affinity else []
    lines = [
        "# Generated by `python -m serving`; edits are overwritten.",
        "global",
        "    maxconn 4096",
        "    log stdout format raw local0",  # into supervisord's log of the haproxy program
        f"    stats socket {deployment.runtime / 'haproxy.sock'} mode 600 level admin",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        f"    timeout connect {CONNECT_TIMEOUT}",
        f"    timeout client {CLIENT_TIMEOUT}",
        f"    timeout server {SERVER_TIMEOUT}",
        f"    timeout tunnel {TUNNEL_TIMEOUT}",
        "    timeout http-request 30s",
        "    timeout queue 30s",
        f"    timeout check {CHECK_TIMEOUT}",
        f"    retries {RETRIES}",
        # A request for a replica that refuses connections (it died) goes to another one at the first retry,
        # after HAProxy's one-second turn-around, rather than after every retry at the dead one.
        "    option redispatch 1",
        "",
        "frontend lens",
        f"    bind {deployment.address}:{deployment.port}",
        "    default_backend replicas",
        "",
        "backend replicas",
        "    balance roundrobin",
        *persistence,
        f"    option httpchk GET {HEALTH_PATH}",
        "    http-check expect status 200",
        # No `on-marked-down shutdown-sessions`: it also closes browsers' idle keep-alive connections, whose next
        # request then fails instead of going to a live replica (a dead replica's websockets close by themselves).
        f"    default-server inter {CHECK_INTERVAL_MS} fall {CHECK_FALL} rise {CHECK_RISE}",
        *servers,
        "",
    ]
    return "\n".join(lines)


def replica_command(deployment: Deployment, port: int) -> list[str]:
    """How supervisord starts the replica on `port` (see serving.replica)."""
    return [deployment.python, "-m", "serving", "replica", "--port", str(port), "--address", "127.0.0.1",
            "--threads", str(deployment.threads), "--secret-file", str(deployment.secret_path)]


def _escaped(text: str) -> str:
    return text.replace("%", "%%")  # supervisord expands %(name)s in its values


def supervisor_config(deployment: Deployment) -> str:
    """supervisord's configuration: one program per replica and one for HAProxy, each restarted when it exits,
    with its log in the runtime folder and a private unix socket for supervisorctl."""
    runtime = deployment.runtime
    sections = [
        "; Generated by `python -m serving`; edits are overwritten.",
        "[unix_http_server]",
        f"file={_escaped(str(deployment.socket_path))}",
        "chmod=0700",
        "",
        "[supervisord]",
        "nodaemon=true",
        f"logfile={_escaped(str(runtime / 'supervisord.log'))}",
        f"pidfile={_escaped(str(runtime / 'supervisord.pid'))}",
        f"childlogdir={_escaped(str(runtime))}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_escaped(str(deployment.socket_path))}",
        "",
    ]
    programs = [(name, replica_command(deployment, port)) for name, port in
                zip(deployment.replica_names, deployment.replica_ports)]
    programs.append((HAPROXY_PROGRAM, [deployment.haproxy, "-db", "-f", str(deployment.haproxy_path)]))
    for name, command in programs:
        sections += [
            f"[program:{name}]",
            f"command={_escaped(shlex.join(command))}",
            f"directory={_escaped(str(ROOT))}",
            "autostart=true",
            "autorestart=true",
            "startsecs=3",
            "startretries=10",
            "stopasgroup=true",
            "killasgroup=true",
            "stopwaitsecs=15",
            "redirect_stderr=true",
            f"stdout_logfile={_escaped(str(runtime / f'{name}.log'))}",
            "stdout_logfile_maxbytes=10MB",
            "stdout_logfile_backups=2",
            'environment=PYTHONUNBUFFERED="1"',
            "",
        ]
    return "\n".join(sections)


def write(deployment: Deployment) -> None:
    """Write the deployment's files into its runtime folder (private to its owner); the cookie secret is made
    only when it is missing, so that a restart keeps every browser's XSRF cookie valid."""
    deployment.runtime.mkdir(parents=True, exist_ok=True)
    os.chmod(deployment.runtime, stat.S_IRWXU)
    cookie_secret(deployment.secret_path)
    for path, text in ((deployment.haproxy_path, haproxy_config(deployment)),
                       (deployment.supervisor_path, supervisor_config(deployment))):
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text)
        os.chmod(temporary, 0o600)
        temporary.replace(path)
