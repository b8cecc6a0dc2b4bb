"""One replica of the app: `streamlit run app.py` with the deployment's settings, replacing this process (so that
the supervisor's pid is Streamlit's, and a signal reaches it).

The same command serves a container (deploy/Dockerfile), where the cookie secret comes from the environment
and the torch threads from the container's CPU limit.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from .config import OWNER_INSTALL_ENV, ROOT, SECRET_ENV, THREADS_ENV, available_cpus

APP = "app.py"


def streamlit_command(port: int, address: str, python: str = sys.executable) -> list[str]:
    """The Streamlit server of one replica; the other settings are the app's own (.streamlit/config.toml)."""
    return [python, "-m", "streamlit", "run", APP, "--server.port", str(port), "--server.address", address,
            "--server.headless", "true"]


def replica_environment(base: dict[str, str], threads: int, secret: str | None) -> dict[str, str]:
    """`base` with the replica's settings: its torch threads, the shared cookie secret (where given) and the
    install button off. A replica listens on loopback behind the load balancer, where the app would take every
    visitor for the server's owner; the owner installs models with `python -m shufflenet_viz weights fetch`."""
    environment = {**base, THREADS_ENV: str(threads), OWNER_INSTALL_ENV: "0"}
    if secret is not None:
        environment[SECRET_ENV] = secret
    if not environment.get(SECRET_ENV):
        raise ValueError(f"no cookie secret: pass --secret-file or set {SECRET_ENV} (the same for every replica)")
    return environment


def run_replica(port: int, address: str, threads: int | None = None, secret_file: Path | None = None) -> NoReturn:
    """Become the replica's Streamlit server."""
    secret = Path(secret_file).read_text().strip() if secret_file is not None else None  # made by serving.config
    environment = replica_environment(dict(os.environ), threads or available_cpus(), secret)
    os.chdir(ROOT)
    command = streamlit_command(port, address)
    os.execve(command[0], command, environment)
