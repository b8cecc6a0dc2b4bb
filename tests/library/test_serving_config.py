"""The class deployment's generated files, read the way their programs read them: HAProxy's configuration parsed
into sections (and checked by `haproxy -c`), supervisord's loaded by supervisor's own option parser; the cookie
secret made once and private; how many replicas a machine gets and how many torch threads each."""

from __future__ import annotations

import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import fail_or_skip
from serving import config
from serving.replica import replica_environment, streamlit_command
from shufflenet_viz import imagenet, runtime

GB = 2**30


def sections(text: str) -> dict[str, list[list[str]]]:
    """HAProxy's configuration as {"global": [...], "defaults": [...], "frontend lens": [...], ...}, each a list
    of directives split into words, comments dropped."""
    parsed: dict[str, list[list[str]]] = {}
    current = None
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if not line[0].isspace():
            current = " ".join(words)
            parsed[current] = []
        else:
            assert current is not None, f"a directive outside a section: {line!r}"
            parsed[current].append(words)
    return parsed


def directives(section: list[list[str]], keyword: str) -> list[list[str]]:
    return [words[1:] for words in section if words[0] == keyword]


def timeouts(section: list[list[str]]) -> dict[str, str]:
    return {words[0]: words[1] for words in directives(section, "timeout")}


def seconds(value: str) -> float:
    """An HAProxy time: a number of milliseconds, or with a unit (us, ms, s, m, h, d)."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
    for unit in sorted(units, key=len, reverse=True):
        if value.endswith(unit) and value[:-len(unit)].isdigit():
            return int(value[:-len(unit)]) * units[unit]
    return int(value) / 1000


@pytest.fixture()
def deployment(tmp_path) -> config.Deployment:
    return config.plan(tmp_path / "serve", port=18500, address="0.0.0.0", replica_ports=(18511, 18512), cpus=2)


def test_haproxy_sticks_each_browser_to_one_replica_by_a_cookie_and_checks_their_health(deployment):
    parsed = sections(config.haproxy_config(deployment))
    assert set(parsed) == {"global", "defaults", "frontend lens", "backend replicas"}
    assert directives(parsed["frontend lens"], "bind") == [["0.0.0.0:18500"]]
    assert directives(parsed["frontend lens"], "default_backend") == [["replicas"]]
    backend = parsed["backend replicas"]
    assert directives(backend, "balance") == [["roundrobin"]]
    # Affinity by a cookie HAProxy inserts (never cached by a proxy on the way, invisible to scripts), not by IP.
    assert directives(backend, "cookie") == [[config.COOKIE_NAME, "insert", "indirect", "nocache", "httponly"]]
    assert not directives(backend, "hash-type") and directives(backend, "balance") != [["source"]]
    servers = directives(backend, "server")
    assert [server[1] for server in servers] == ["127.0.0.1:18511", "127.0.0.1:18512"]
    cookies = [server[server.index("cookie") + 1] for server in servers]
    assert len(set(cookies)) == 2 and all("check" in server for server in servers)
    # Active health checks on Streamlit's own endpoint, often enough that a dead replica is out within ~2 s.
    assert directives(backend, "option") == [["httpchk", "GET", config.HEALTH_PATH]]
    assert directives(backend, "http-check") == [["expect", "status", "200"]]
    default_server = directives(backend, "default-server")[0]
    inter, fall = int(default_server[default_server.index("inter") + 1]), \
        int(default_server[default_server.index("fall") + 1])
    assert inter * fall <= 2500
    defaults = parsed["defaults"]
    assert ["redispatch", "1"] in directives(defaults, "option") and int(directives(defaults, "retries")[0][0]) >= 1
    assert "shutdown-sessions" not in default_server  # it would close idle keep-alive connections of browsers
    assert directives(defaults, "mode") == [["http"]]
    # A websocket idling through a lecture stays open; an upload over a slow link is not cut.
    limits = timeouts(defaults)
    assert seconds(limits["tunnel"]) >= 3600 and seconds(limits["client"]) >= 60 and seconds(limits["server"]) >= 60
    assert seconds(limits["connect"]) <= 5
    # A busy replica's late health answer does not take it out (HAProxy would otherwise wait `inter` only).
    assert seconds(limits["check"]) >= 5 * inter / 1000
    # HAProxy limits no body by default: nothing here may add one below Streamlit's maxUploadSize.
    every_line = [" ".join(words) for section in parsed.values() for words in section]
    assert not [line for line in every_line if "body" in line or "bufsize" in line], every_line


def test_without_affinity_the_configuration_has_no_cookie(deployment):
    from dataclasses import replace

    parsed = sections(config.haproxy_config(replace(deployment, affinity=False)))
    backend = parsed["backend replicas"]
    assert directives(backend, "cookie") == []
    assert all("cookie" not in server for server in directives(backend, "server"))
    assert directives(backend, "balance") == [["roundrobin"]]


def test_haproxy_accepts_the_generated_configuration(deployment):
    if not Path(deployment.haproxy).exists():
        fail_or_skip(f"HAProxy is not installed ({deployment.haproxy}): `apt-get install haproxy`")
    config.write(deployment)
    checked = subprocess.run([deployment.haproxy, "-c", "-f", str(deployment.haproxy_path)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Configuration file is valid" in checked.stdout + checked.stderr
    broken = deployment.runtime / "broken.cfg"
    broken.write_text(config.haproxy_config(deployment).replace("balance roundrobin", "balance nowhere"))
    assert subprocess.run([deployment.haproxy, "-c", "-f", str(broken)], capture_output=True).returncode != 0


def test_supervisord_keeps_every_replica_and_the_load_balancer_running(deployment):
    from supervisor.datatypes import RestartUnconditionally
    from supervisor.options import ServerOptions

    config.write(deployment)
    options = ServerOptions()
    options.realize(args=["-c", str(deployment.supervisor_path)])
    programs = {program.name: program for group in options.process_group_configs
                for program in group.process_configs}
    assert set(programs) == {"replica-1", "replica-2", config.HAPROXY_PROGRAM}
    for name, program in programs.items():
        assert program.autorestart is RestartUnconditionally, name
        assert program.stopasgroup and program.killasgroup, name
        assert Path(program.stdout_logfile).parent == deployment.runtime, name
        assert program.directory == str(config.ROOT)
    for name, port in zip(deployment.replica_names, deployment.replica_ports):
        words = shlex.split(programs[name].command)
        assert words[1:4] == ["-m", "serving", "replica"]
        assert words[words.index("--port") + 1] == str(port) and words[words.index("--address") + 1] == "127.0.0.1"
        assert words[words.index("--secret-file") + 1] == str(deployment.secret_path)
        assert words[words.index("--threads") + 1] == "1"  # two CPUs shared by two replicas
        assert config.SECRET_ENV not in (programs[name].environment or {})  # the secret stays in its file
    haproxy = shlex.split(programs[config.HAPROXY_PROGRAM].command)
    assert haproxy[:2] == [deployment.haproxy, "-db"] and haproxy[-1] == str(deployment.haproxy_path)
    assert options.nodaemon  # `make serve` in the foreground: Ctrl-C stops everything
    socket = options.server_configs[0]
    assert socket["file"] == str(deployment.socket_path) and socket["chmod"] == 0o700


def test_the_cookie_secret_is_made_once_private_and_reused(deployment):
    config.write(deployment)
    path = deployment.secret_path
    first = path.read_text().strip()
    assert len(first) == 64 and int(first, 16) >= 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(deployment.runtime.stat().st_mode) == 0o700
    path.chmod(0o644)
    config.write(deployment)  # a second generation (a restart of the deployment) keeps the secret
    assert path.read_text().strip() == first and stat.S_IMODE(path.stat().st_mode) == 0o600
    other = config.plan(deployment.runtime.parent / "other", replica_ports=(18611,), port=18600, cpus=2)
    config.write(other)
    assert other.secret_path.read_text().strip() != first  # another deployment, another secret
    path.write_text("short\n")
    with pytest.raises(ValueError, match="no usable secret"):
        config.cookie_secret(path)


@pytest.mark.parametrize(("cpus", "memory_gb", "replicas", "threads"), [
    (2, 23, 2, 1),  # this machine: one per core
    (16, 4, 2, 8),  # memory-bound: 4 GB holds two replicas at their 1.7 GB peak; each gets 8 threads
    (2, 1, 1, 2),  # too little memory for even one: one all the same
    (3, 64, 3, 1),
])
def test_one_replica_per_core_as_many_as_the_memory_holds(cpus, memory_gb, replicas, threads):
    count = config.replica_count(cpus, memory_gb * GB)
    assert count == replicas
    assert config.threads_per_replica(cpus, count) == threads
    planned = config.plan(Path("/tmp/unused"), cpus=cpus, memory_bytes=memory_gb * GB)
    assert len(planned.replica_ports) == replicas and planned.threads == threads
    assert planned.replica_ports[0] == config.FIRST_REPLICA_PORT


def test_a_plan_refuses_clashing_ports():
    with pytest.raises(ValueError, match="ports must differ"):
        config.plan(Path("/tmp/unused"), port=18500, replica_ports=(18500, 18501))
    with pytest.raises(ValueError, match="ports must differ"):
        config.plan(Path("/tmp/unused"), port=18500, replica_ports=(18501, 18501))


def test_a_replica_runs_the_apps_command_with_the_shared_secret_and_no_install_button():
    environment = replica_environment({"PATH": "/usr/bin"}, threads=3, secret="s" * 64)
    assert environment[config.SECRET_ENV] == "s" * 64
    assert environment[config.THREADS_ENV] == "3"
    # Replicas listen on loopback, where the app would offer every visitor the owner's install button.
    assert imagenet.install_allowed("127.0.0.1", imagenet.parse_switch(environment[config.OWNER_INSTALL_ENV])) \
        is False
    assert replica_environment({config.SECRET_ENV: "from-a-secret"}, 1, None)[config.SECRET_ENV] == "from-a-secret"
    with pytest.raises(ValueError, match="no cookie secret"):
        replica_environment({}, 1, None)
    with pytest.raises(ValueError, match="no cookie secret"):
        replica_environment({}, 1, "")
    command = streamlit_command(8511, "127.0.0.1", python="python")
    assert command[:5] == ["python", "-m", "streamlit", "run", "app.py"]
    flags = dict(zip(command[5::2], command[6::2]))
    assert flags == {"--server.port": "8511", "--server.address": "127.0.0.1", "--server.headless": "true"}


def test_the_names_the_replicas_read_are_the_apps():
    assert config.THREADS_ENV == runtime.THREADS_ENV
    assert config.OWNER_INSTALL_ENV == imagenet.OWNER_INSTALL_ENV


def test_torch_threads_come_from_the_environment_where_a_deployment_sets_them(monkeypatch):
    try:
        monkeypatch.setenv(runtime.THREADS_ENV, "3")
        assert runtime.configure_torch_threads() == 3 and torch.get_num_threads() == 3
        for unusable in ("0", "-2", "two", ""):
            monkeypatch.setenv(runtime.THREADS_ENV, unusable)
            assert runtime.configure_torch_threads() == runtime.SERVING_THREADS
        monkeypatch.delenv(runtime.THREADS_ENV)
        assert runtime.configure_torch_threads() == runtime.SERVING_THREADS
    finally:
        monkeypatch.delenv(runtime.THREADS_ENV, raising=False)
        runtime.configure_torch_threads()
    assert torch.get_num_threads() == runtime.SERVING_THREADS


def test_this_machine_has_a_cpu_and_memory_for_a_replica():
    assert config.available_cpus() >= 1
    assert config.available_memory_bytes() > 0


def test_the_command_line_writes_the_files_and_refuses_a_port_in_use(tmp_path, capsys):
    import socket

    from serving.__main__ import main

    assert main(["generate", "--runtime", str(tmp_path / "a"), "--port", "18700", "--replicas", "2"]) == 0
    written = sorted(path.name for path in (tmp_path / "a").iterdir())
    assert written == [config.SECRET_FILE, config.HAPROXY_FILE, config.SUPERVISOR_FILE]
    assert "2 replicas" in capsys.readouterr().out
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["up", "--runtime", str(tmp_path / "b"), "--port", str(port), "--replicas", "1"]) == 2
    assert f"In use already: 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # nothing written, nothing started
    assert main(["status", "--runtime", str(tmp_path / "b")]) == 3
    assert main(["down", "--runtime", str(tmp_path / "b")]) == 0
    assert "No deployment is running" in capsys.readouterr().out
