"""`python -m serving up|down|status|generate|replica`: the class deployment (see serving.config and README,
"Serving a class")."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

from . import config, control
from .replica import run_replica


def _deployment(arguments: argparse.Namespace) -> config.Deployment:
    return config.plan(Path(arguments.runtime), port=arguments.port, address=arguments.address,
                       replicas=arguments.replicas)


def _describe(deployment: config.Deployment) -> str:
    ports = ", ".join(str(port) for port in deployment.replica_ports)
    count = len(deployment.replica_ports)
    return (f"{count} replica{'s' if count > 1 else ''} (loopback ports {ports}, {deployment.threads} torch "
            f"thread{'s' if deployment.threads > 1 else ''} each) behind HAProxy at {deployment.url}; "
            f"files and logs in {deployment.runtime}")


def _free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _up(arguments: argparse.Namespace) -> int:
    deployment = _deployment(arguments)
    if not Path(deployment.haproxy).exists():
        print(f"HAProxy is not installed ({deployment.haproxy}): `apt-get install haproxy`", file=sys.stderr)
        return 2
    taken = [f"{address}:{port}" for address, port in [(deployment.address, deployment.port)] +
             [("127.0.0.1", port) for port in deployment.replica_ports] if not _free(address, port)]
    if taken:
        print(f"In use already: {', '.join(taken)} (a deployment running? `make serve-stop`; or choose "
              f"SERVE_PORT=)", file=sys.stderr)
        return 2
    config.write(deployment)
    print(f"Serving {_describe(deployment)}. Ctrl-C (or `make serve-stop` elsewhere) stops everything.", flush=True)
    os.execv(control.SUPERVISORD, [str(control.SUPERVISORD), "-c", str(deployment.supervisor_path)])


def _generate(arguments: argparse.Namespace) -> int:
    deployment = _deployment(arguments)
    config.write(deployment)
    print(f"Wrote {deployment.haproxy_path.name} and {deployment.supervisor_path.name} for {_describe(deployment)}")
    return 0


def _down(arguments: argparse.Namespace) -> int:
    deployment = config.plan(Path(arguments.runtime), replicas=1)
    if not control.shutdown(deployment):
        print(f"No deployment is running from {deployment.runtime}.")
        return 0
    deadline = time.monotonic() + 30
    while deployment.socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.5)  # supervisord removes its socket when every program has stopped
    print("Stopped the replicas and the load balancer.")
    return 0


def _status(arguments: argparse.Namespace) -> int:
    deployment = config.plan(Path(arguments.runtime), replicas=1)
    try:
        states = control.programs(deployment)
    except OSError:
        print(f"No deployment is running from {deployment.runtime}.")
        return 3
    for state in states.values():
        print(f"{state.name:12} {state.state:9} pid {state.pid}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("up", "write the files and run the deployment in the foreground"),
                            ("generate", "write the files only"),
                            ("down", "stop a running deployment"),
                            ("status", "the state of each program")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--runtime", default=str(config.DEFAULT_RUNTIME), help="the deployment's folder")
        if name in ("up", "generate"):
            command.add_argument("--port", type=int, default=config.DEFAULT_PORT, help="the load balancer's port")
            command.add_argument("--address", default="127.0.0.1",
                                 help="the load balancer's address (0.0.0.0: every interface)")
            command.add_argument("--replicas", type=int, default=None,
                                 help="how many replicas (default: one per CPU, as many as the memory holds)")
    replica = commands.add_parser("replica", help="run one replica (supervisord and containers call this)")
    replica.add_argument("--port", type=int, required=True)
    replica.add_argument("--address", default="127.0.0.1")
    replica.add_argument("--threads", type=int, default=None, help="torch threads (default: the CPUs available)")
    replica.add_argument("--secret-file", default=None, help=f"the cookie secret (default: ${config.SECRET_ENV})")
    arguments = parser.parse_args(argv)
    if arguments.command == "replica":
        run_replica(arguments.port, arguments.address, arguments.threads,
                    Path(arguments.secret_file) if arguments.secret_file else None)
    if getattr(arguments, "replicas", None) is not None and arguments.replicas < 1:
        parser.error("--replicas must be at least 1")
    return {"up": _up, "generate": _generate, "down": _down, "status": _status}[arguments.command](arguments)


if __name__ == "__main__":
    sys.exit(main())
