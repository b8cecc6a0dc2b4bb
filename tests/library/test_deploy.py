"""deploy/: the container and the Kubernetes manifests, checked offline (no container runtime or cluster runs
here). They must say what the class deployment (serving/) does: affinity by a cookie, health on Streamlit's
endpoint, one cookie secret for every replica from a Secret, bodies up to Streamlit's upload limit, websockets
kept open, bounded resources; and the container runs the same requirements and command as `make serve`."""

from __future__ import annotations

import json
import re
import shlex
import tomllib

import pytest
import yaml

from conftest import ROOT
from serving import config
from serving.replica import streamlit_command

DEPLOY = ROOT / "deploy"
AFFINITY = "nginx.ingress.kubernetes.io/"


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    documents = [document for document in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if document]
    kinds = [document["kind"] for document in documents]
    assert len(kinds) == len(set(kinds)), kinds
    return {document["kind"]: document for document in documents}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in (DEPLOY / "Dockerfile").read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines()
            if line.strip()]


def megabytes(size: str) -> float:
    """An nginx size (32m, 1g, 512k, bytes) in megabytes."""
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", size).groups()
    return int(number) * {"": 2**-20, "k": 2**-10, "m": 1, "g": 1024}[unit.lower()]


def upload_limit_mb() -> int:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]


def container(manifests: dict) -> dict:
    containers = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_the_deployment_runs_several_replicas_with_probes_on_streamlits_health(manifests):
    deployment = manifests["Deployment"]
    assert deployment["apiVersion"] == "apps/v1" and deployment["spec"]["replicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    app = container(manifests)
    port = app["ports"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        check = app[probe]["httpGet"]
        assert check["path"] == config.HEALTH_PATH, probe
        assert check["port"] in (port["name"], port["containerPort"]), probe
    # Out of rotation within seconds of failing, restarted only after a longer silence.
    readiness, liveness = app["readinessProbe"], app["livenessProbe"]
    assert readiness["periodSeconds"] * readiness.get("failureThreshold", 3) <= 5
    assert liveness["periodSeconds"] * liveness.get("failureThreshold", 3) >= 20
    assert "command" not in app and "args" not in app  # the image's command: the same as `make serve`'s replicas


def test_every_replica_gets_the_same_cookie_secret_from_a_secret(manifests):
    app = container(manifests)
    secret = [variable for variable in app["env"] if variable["name"] == config.SECRET_ENV]
    assert len(secret) == 1 and "value" not in secret[0]
    reference = secret[0]["valueFrom"]["secretKeyRef"]
    assert reference["name"] and reference["key"]
    assert "Secret" not in manifests  # made with kubectl (see the file's header), never committed
    assert f"create secret generic {reference['name']}" in (DEPLOY / "kubernetes.yaml").read_text()


def test_resources_hold_a_replica_at_its_peak(manifests):
    resources = container(manifests)["resources"]
    units = {"Mi": 2**20, "Gi": 2**30}
    memory = {kind: int(value[:-2]) * units[value[-2:]] for kind, value in
              ((kind, resources[kind]["memory"]) for kind in ("requests", "limits"))}
    assert memory["limits"] >= config.REPLICA_MEMORY_BYTES > memory["requests"] > 0
    assert float(resources["limits"]["cpu"]) >= float(resources["requests"]["cpu"]) >= 1


def test_the_service_and_the_ingress_reach_the_replicas(manifests):
    service, ingress = manifests["Service"], manifests["Ingress"]
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    port = container(manifests)["ports"][0]
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])
    backends = [path["backend"]["service"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    assert backends and all(backend["name"] == service["metadata"]["name"] for backend in backends)
    assert all(backend["port"].get("name") == service["spec"]["ports"][0]["name"] or
               backend["port"].get("number") == service["spec"]["ports"][0]["port"] for backend in backends)


def test_the_ingress_sticks_by_a_cookie_takes_uploads_and_keeps_websockets_open(manifests):
    annotations = manifests["Ingress"]["metadata"]["annotations"]
    assert annotations[AFFINITY + "affinity"] == "cookie"
    assert annotations[AFFINITY + "session-cookie-name"] == config.COOKIE_NAME
    assert annotations.get(AFFINITY + "affinity-mode", "balanced") == "persistent"
    assert megabytes(annotations[AFFINITY + "proxy-body-size"]) > upload_limit_mb()
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert isinstance(annotations[AFFINITY + timeout], str)  # Kubernetes takes annotations as strings only
        assert int(annotations[AFFINITY + timeout]) >= 3600, timeout
    assert manifests["Ingress"]["spec"]["ingressClassName"] == "nginx"


def test_the_container_installs_the_apps_requirements_and_runs_a_replica(manifests):
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [arguments for instruction, arguments in instructions if instruction == "RUN"]
    installs = [shlex.split(command.strip()) for run in runs if "pip install" in run for command in run.split("&&")]
    # PyTorch's CPU build at requirements.txt's own pins (read from the file, not repeated), then the file itself,
    # as the Makefile's .installed-app installs it.
    assert installs[-1] == ["pip", "install", "-r", "requirements.txt"]
    assert installs[0][:4] == ["pip", "install", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert installs[0][4:] == [f"$(grep '^{package}==' requirements.txt)" for package in ("torch", "torchvision")]
    assert len(installs) == 2
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"\.installed-app:.*\n\t\$\(BIN\)/python -m pip install --quiet -r requirements\.txt", makefile)
    copies = [arguments for instruction, arguments in instructions if instruction == "COPY"]
    assert "requirements.txt ./" in copies and ". ." in copies
    command = json.loads(dict(instructions)["CMD"])
    assert command[:4] == ["python", "-m", "serving", "replica"]
    flags = dict(zip(command[4::2], command[5::2]))
    assert flags["--address"] == "0.0.0.0" and "--threads" not in flags and "--secret-file" not in flags
    port = int(flags["--port"])
    assert dict(instructions)["EXPOSE"] == str(port) == str(container(manifests)["ports"][0]["containerPort"])
    # A replica under `make serve` runs the same Streamlit command, on loopback.
    assert streamlit_command(port, "0.0.0.0")[2:5] == ["streamlit", "run", "app.py"]
    assert ["--server.port", "--server.address"] == [word for word in shlex.split(
        re.search(r"\nrun:.*\n\t(.*)", makefile).group(1)) if word.startswith("--")]
    user = dict(instructions).get("USER")
    assert user and user not in ("root", "0")


def test_the_build_leaves_out_secrets_fetched_models_and_the_local_deployment():
    ignored = {line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".serve", ".streamlit/secrets.toml", "weights/imagenet"} <= ignored
    assert ".streamlit" not in ignored and ".streamlit/config.toml" not in ignored  # the app's own settings ship
