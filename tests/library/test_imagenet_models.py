"""The real published ImageNet checkpoints (from the mirror beside the project): conversion checked against an
independent functional forward pass over the raw tensors, answers on the samples, and the download path served
by a loopback HTTP server (success, 404, truncated body, wrong hash, a server too slow), for all five models that
`--all` installs (osmr's 1x pair stood in by checkpoints in osmr's layout)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from shufflenet_viz import imagenet
from shufflenet_viz.cli import main
from shufflenet_viz.flops import model_report
from shufflenet_viz.imagenet import CATALOGUE, EXIT_ALL, EXIT_NONE, EXIT_SOME, RECOMMENDED, fetch_imagenet
from shufflenet_viz.inference import classify
from shufflenet_viz.model import STAGE_REPEATS, count_parameters
from shufflenet_viz.preprocess import preprocess_image
from shufflenet_viz.weights import WeightsError, load_all, read_manifest

from conftest import IMAGENET_MIRROR, MIRRORED, OSMR_PAIR, ROOT

# --- an independent forward pass, written from the publishers' code over the raw checkpoint tensors -------------


def _bn(x, sd, prefix):
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"],
                        sd[f"{prefix}.bias"], training=False, eps=1e-5)


def _grouped(x, weight, **kwargs):
    return F.conv2d(x, weight, groups=x.shape[1] // weight.shape[1], **kwargs)


def _official_forward(sd: dict, x: torch.Tensor, groups: int) -> torch.Tensor:
    """megvii ShuffleNetV1 (blocks.py / network.py): shuffle after the depthwise conv as a (C/g, g) reshape,
    stride-2 output cat(avg-pooled input, ReLU(branch)), classifier without bias."""
    sd = {key.removeprefix("module."): value for key, value in sd.items()}
    x = F.relu(_bn(F.conv2d(x, sd["first_conv.0.weight"], stride=2, padding=1), sd, "first_conv.1"))
    x = F.max_pool2d(x, 3, 2, 1)
    first_units = {sum(STAGE_REPEATS[:i]) for i in range(3)}
    for index in range(sum(STAGE_REPEATS)):
        prefix, stride = f"features.{index}", 2 if index in first_units else 1
        y = F.relu(_bn(_grouped(x, sd[f"{prefix}.branch_main_1.0.weight"]), sd, f"{prefix}.branch_main_1.1"))
        y = _bn(_grouped(y, sd[f"{prefix}.branch_main_1.3.weight"], stride=stride, padding=1), sd,
                f"{prefix}.branch_main_1.4")
        n, c, h, w = y.shape
        y = y.reshape(n, c // groups, groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)
        y = _bn(_grouped(y, sd[f"{prefix}.branch_main_2.0.weight"]), sd, f"{prefix}.branch_main_2.1")
        x = F.relu(y + x) if stride == 1 else torch.cat((F.avg_pool2d(x, 3, 2, 1), F.relu(y)), 1)
    return F.linear(F.avg_pool2d(x, 7).flatten(1), sd["classifier.0.weight"])


def _osmr_forward(sd: dict, x: torch.Tensor, groups: int) -> torch.Tensor:
    """pytorchcv ShuffleNet: shuffle right after the first 1x1 GConv as a (g, C/g) reshape, stride-2 output
    ReLU(cat(branch, avg-pooled input))."""
    x = F.relu(_bn(F.conv2d(x, sd["features.init_block.conv.weight"], stride=2, padding=1), sd,
                   "features.init_block.bn"))
    x = F.max_pool2d(x, 3, 2, 1)
    for stage, repeats in enumerate(STAGE_REPEATS, start=1):
        for unit in range(1, repeats + 1):
            prefix, stride = f"features.stage{stage}.unit{unit}", 2 if unit == 1 else 1
            y = F.relu(_bn(_grouped(x, sd[f"{prefix}.compress_conv1.weight"]), sd, f"{prefix}.compress_bn1"))
            n, c, h, w = y.shape
            y = y.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
            y = _bn(_grouped(y, sd[f"{prefix}.dw_conv2.weight"], stride=stride, padding=1), sd, f"{prefix}.dw_bn2")
            y = _bn(_grouped(y, sd[f"{prefix}.expand_conv3.weight"]), sd, f"{prefix}.expand_bn3")
            x = F.relu(y + x) if stride == 1 else F.relu(torch.cat((y, F.avg_pool2d(x, 3, 2, 1)), 1))
    return F.linear(F.avg_pool2d(x, 7).flatten(1), sd["output.weight"], sd["output.bias"])


def _raw_checkpoint(name: str) -> dict:
    raw = torch.load(IMAGENET_MIRROR / CATALOGUE[name].file_name, map_location="cpu", weights_only=True)
    return raw["state_dict"] if "state_dict" in raw else raw


@pytest.mark.parametrize("name", MIRRORED)
def test_converted_logits_equal_an_independent_forward_pass(imagenet_models, sample_image_paths, name):
    loaded, checkpoint = imagenet_models[name], CATALOGUE[name]
    forward = _official_forward if checkpoint.source == "official" else _osmr_forward
    pictures = [Image.open(sample_image_paths[f]).convert("RGB") for f in ("cat.jpg", "dog.jpg")]
    x = torch.cat([preprocess_image(p, loaded.preprocessing) for p in pictures] + [torch.randn(1, 3, 224, 224)])
    with torch.no_grad():
        expected, actual = forward(_raw_checkpoint(name), x, checkpoint.groups), loaded.model(x)
    assert expected.abs().max() > 1.0
    assert (expected - actual).abs().max().item() < 1e-4


@pytest.mark.parametrize("name,parameters,mflops", [("imagenet_official_g3_w0.5", 717_324, 37.6),
                                                    ("imagenet_official_g8_w0.5", 1_010_448, 40.5),
                                                    ("imagenet_osmr_g3_w0.25", 305_902, 11.0)])
def test_size_and_cost_match_the_publishers(imagenet_models, name, parameters, mflops):
    # Official README: 0.5x g=3 38 MFLOPs / 0.7 M params, 0.5x g=8 40 MFLOPs / 1.0 M params.
    model = imagenet_models[name].model
    assert count_parameters(model) == parameters == imagenet_models[name].entry["architecture"]["parameters"]
    assert model_report(model, 224).total_macs / 1e6 == pytest.approx(mflops, abs=0.05)


EXPECTED_TOP1 = {"cat.jpg": {"Egyptian cat", "tabby", "tiger cat"}, "dog.jpg": {"German shepherd"},
                 "coffee_cup.jpg": {"espresso"}}


@pytest.mark.parametrize("name", MIRRORED)
def test_sample_photos_get_the_right_class(imagenet_models, sample_image_paths, name):
    for file, classes in EXPECTED_TOP1.items():
        answer = classify(imagenet_models[name], Image.open(sample_image_paths[file]).convert("RGB"))
        assert answer.predicted_class in classes, (file, answer.top(3))


def test_manifest_entries_carry_provenance(imagenet_dir):
    entries = read_manifest(imagenet_dir)
    assert sorted(entries) == sorted(MIRRORED)
    official = entries["imagenet_official_g3_w0.5"]
    assert official["architecture"]["layout"] == "official"
    assert official["preprocessing"]["channel_order"] == "BGR" and official["preprocessing"]["max_value"] == 255.0
    assert official["metrics"]["top1_error_percent_reported"] == 42.7
    assert official["provenance"]["published_sha256"] == CATALOGUE["imagenet_official_g3_w0.5"].sha256
    assert entries["imagenet_osmr_g3_w0.25"]["architecture"]["layout"] == "paper"
    assert entries["imagenet_osmr_g3_w0.25"]["preprocessing"]["mean"] == [0.485, 0.456, 0.406]


# --- the download path against a loopback server ---------------------------------------------------------------

class _MirrorHandler(http.server.BaseHTTPRequestHandler):
    """/ok/FILE serves the mirror's file; /truncated/FILE stops halfway; /wrong/FILE serves another checkpoint;
    /slow/FILE waits before answering; anything else is a 404."""

    def do_GET(self):  # noqa: N802 (the name http.server calls)
        mode, _, file = self.path.lstrip("/").partition("/")
        path = IMAGENET_MIRROR / file
        if mode not in ("ok", "truncated", "wrong", "slow") or not path.is_file():
            self.send_error(404)
            return
        if mode == "slow":
            time.sleep(3)
        data = path.read_bytes()
        if mode == "wrong":
            data = (IMAGENET_MIRROR / CATALOGUE["imagenet_osmr_g3_w0.25"].file_name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data[:len(data) // 2] if mode == "truncated" else data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


def _loopback_only(monkeypatch) -> None:
    """Every connection but to this machine is refused, so no test can reach outside it."""
    connect = socket.socket.connect

    def loopback_only(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"test tried to reach {host}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


def _serve(handler) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _publishers_gone(monkeypatch, base: str) -> None:
    """The publishers' URLs point at a loopback server's 404s: a failed mirror falls back to them, offline."""
    for name, checkpoint in list(CATALOGUE.items()):
        monkeypatch.setitem(CATALOGUE, name, replace(checkpoint, url=f"{base}/gone/{checkpoint.file_name}"))


@pytest.fixture()
def mirror_server(monkeypatch):
    """A loopback HTTP mirror of the mirror folder's files (see _MirrorHandler)."""
    _loopback_only(monkeypatch)
    server = _serve(_MirrorHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _publishers_gone(monkeypatch, base)
    yield base
    server.shutdown()
    server.server_close()


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture()
def five_model_mirror(osmr_standins, tmp_path, monkeypatch):
    """(URL, requests seen) of a loopback HTTP mirror holding all five files `--all` installs: the mirror's three
    and the osmr 1x stand-ins, whose sha1 replaces the published one in the catalogue for this test only."""
    if not IMAGENET_MIRROR.is_dir():
        pytest.skip(f"the ImageNet mirror {IMAGENET_MIRROR} is missing")
    standins, checkpoints = osmr_standins
    folder = tmp_path / "mirror"
    folder.mkdir()
    for name in MIRRORED:
        (folder / CATALOGUE[name].file_name).symlink_to(IMAGENET_MIRROR / CATALOGUE[name].file_name)
    for name in OSMR_PAIR:
        (folder / CATALOGUE[name].file_name).symlink_to(standins / CATALOGUE[name].file_name)
        monkeypatch.setitem(CATALOGUE, name, checkpoints[name])
    _loopback_only(monkeypatch)
    handler = type("Handler", (_CountingHandler,), {"requests": []})
    server = _serve(functools.partial(handler, directory=str(folder)))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _publishers_gone(monkeypatch, base)
    yield base, handler.requests
    server.shutdown()
    server.server_close()


def test_all_five_install_through_a_loopback_mirror_then_are_already_there(five_model_mirror, tmp_path,
                                                                            monkeypatch, capsys):
    base, requests = five_model_mirror
    fetched = tmp_path / "fetched"
    monkeypatch.setattr(imagenet, "FETCHED_DIR", fetched)
    assert main(["weights", "fetch", "imagenet", "--all", "--mirror", base, "--quiet"]) == EXIT_ALL
    out = capsys.readouterr()
    lines = out.out.splitlines()
    for name in RECOMMENDED:
        line = next(line for line in lines if f" {name} " in line)
        assert line.startswith("installed ") and f"from {base}/{CATALOGUE[name].file_name} " in line, line
    assert "5 of 5 models installed or already there (exit status 0)" in lines and out.err == ""
    assert sorted(read_manifest(fetched)) == sorted(RECOMMENDED)
    loaded, problems = load_all(fetched)
    assert not problems and sorted(loaded) == sorted(RECOMMENDED)
    for name in OSMR_PAIR:  # the stand-ins in osmr's layout load strictly into our 1x models
        assert loaded[name].model.config.width == 1.0 and loaded[name].groups == CATALOGUE[name].groups
        assert loaded[name].entry["provenance"]["published_sha1"] == CATALOGUE[name].sha1
    assert sorted(requests) == sorted(f"/{CATALOGUE[name].file_name}" for name in RECOMMENDED)

    requests.clear()
    assert main(["weights", "fetch", "imagenet", "--all", "--mirror", base, "--quiet"]) == EXIT_ALL
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("already there ") for line in lines) == 5 and requests == []


def test_all_from_a_damaged_mirror_reports_each_model_and_exits_none(mirror_server, tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.setattr(imagenet, "FETCHED_DIR", tmp_path / "fetched")
    status = main(["weights", "fetch", "imagenet", "--all", "--mirror", f"{mirror_server}/truncated/", "--quiet"])
    out = capsys.readouterr()
    assert status == EXIT_NONE and "0 of 5 models installed or already there (exit status 2)" in out.out
    errors = out.err.splitlines()
    assert len(errors) == 5
    for name in RECOMMENDED:
        line = next(line for line in errors if f" {name} " in line)
        # The mirror's three files are served cut short (failed); the other two it does not have.
        expected = ("failed", "ended after") if name in MIRRORED else ("not in the mirror", "answered HTTP 404")
        assert line.startswith(f"{expected[0]} ") and expected[1] in line, line
    assert not (tmp_path / "fetched").exists()


def test_all_against_the_shared_mirror_installs_three_and_reports_two_missing(tmp_path):
    if not IMAGENET_MIRROR.is_dir():
        pytest.skip(f"the ImageNet mirror {IMAGENET_MIRROR} is missing")
    # A proxy on a closed loopback port: the publishers' downloads fail at once, as offline.
    result = _cli(["weights", "fetch", "imagenet", "--all", "--mirror", str(IMAGENET_MIRROR), "--quiet"], ROOT,
                  SHUFFLENET_LENS_FETCHED=str(tmp_path), https_proxy="http://127.0.0.1:9",
                  http_proxy="http://127.0.0.1:9")
    assert result.returncode == EXIT_SOME == 1, result.stderr
    installed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("installed ")]
    missing = [line.split()[4] for line in result.stderr.splitlines() if line.startswith("not in the mirror ")]
    assert installed == list(MIRRORED) and missing == list(OSMR_PAIR), (result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 2 and "Traceback" not in result.stderr
    for name in OSMR_PAIR:
        assert f"{IMAGENET_MIRROR / CATALOGUE[name].file_name} does not exist" in result.stderr
    assert "3 of 5 models installed or already there (exit status 1)" in result.stdout
    assert sorted(read_manifest(tmp_path)) == sorted(MIRRORED)


def test_fetch_from_a_loopback_mirror_through_the_cli(mirror_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(imagenet, "FETCHED_DIR", tmp_path)
    assert main(["weights", "fetch", "imagenet", "--groups", "8", "--mirror", f"{mirror_server}/ok/",
                 "--quiet"]) == EXIT_ALL
    assert capsys.readouterr().out.splitlines()[0].split() == [
        "installed", "imagenet_official_g8_w0.5", "from", f"{mirror_server}/ok/megvii_shufflenetv1_g8_0.5x.pth.tar",
        "into", str(tmp_path)]
    entry = read_manifest(tmp_path)["imagenet_official_g8_w0.5"]
    assert entry["provenance"]["fetched_from"] == f"{mirror_server}/ok/megvii_shufflenetv1_g8_0.5x.pth.tar"


@pytest.mark.parametrize("mode,message", [("missing", "HTTP 404"), ("truncated", "ended after 1,488,833 of "),
                                          ("wrong", "sha256 mismatch")])
def test_a_bad_mirror_is_refused_and_nothing_is_written(mirror_server, tmp_path, mode, message):
    checkpoint = CATALOGUE["imagenet_official_g3_w0.5"]
    with pytest.raises(WeightsError, match=message) as raised:
        fetch_imagenet(checkpoint, tmp_path / "fetched", mirror=f"{mirror_server}/{mode}/")
    assert "HTTP 404" in str(raised.value)  # then the publisher (here: loopback, gone) was tried too
    assert not (tmp_path / "fetched").exists()


def test_a_silent_server_times_out(mirror_server, tmp_path):
    started = time.monotonic()
    with pytest.raises(WeightsError, match="timed out"):
        fetch_imagenet(CATALOGUE["imagenet_osmr_g3_w0.25"], tmp_path, mirror=f"{mirror_server}/slow/", timeout=0.5)
    assert time.monotonic() - started < 2.5 and list(tmp_path.iterdir()) == []


def test_a_download_larger_than_published_is_refused(mirror_server, tmp_path):
    small = replace(CATALOGUE["imagenet_official_g3_w0.5"], max_bytes=1_000_000)
    with pytest.raises(WeightsError, match="more than the 1,000,000"):
        fetch_imagenet(small, tmp_path, mirror=f"{mirror_server}/ok/")


def _cli(args, cwd, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("SHUFFLENET_LENS_FETCHED", imagenet.MIRROR_ENV)}
    env.update(PYTHONPATH=str(cwd), **env_changes)
    return subprocess.run([sys.executable, "-m", "shufflenet_viz", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_offline_without_a_mirror_one_line_exit_2_nothing_changed(tmp_path):
    # Any proxy on a closed loopback port makes every download fail at once, as offline.
    result = _cli(["weights", "fetch", "imagenet", "--groups", "3", "--width", "0.5", "--quiet"], ROOT,
                  SHUFFLENET_LENS_FETCHED=str(tmp_path), https_proxy="http://127.0.0.1:9",
                  http_proxy="http://127.0.0.1:9")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "Offline? Point --mirror" in result.stderr and list(tmp_path.iterdir()) == []


def test_fetched_files_never_show_in_git_status(tmp_path):
    """A fetch into the default place of a checkout leaves `git status` clean (and no tracked file changed)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    checkout = tmp_path / "checkout"
    for relative in filter(None, files.decode().split("\0")):
        if (ROOT / relative).is_file():
            (checkout / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, checkout / relative)
    shutil.copy2(ROOT / ".gitignore", checkout / ".gitignore")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "tree"]):
        subprocess.run(git + command, cwd=checkout, check=True)
    result = _cli(["weights", "fetch", "imagenet", "--groups", "3", "--width", "0.25", "--source", "osmr",
                   "--quiet"], checkout, **{imagenet.MIRROR_ENV: str(IMAGENET_MIRROR)})
    assert result.returncode == 0, result.stderr
    assert (checkout / "weights" / "imagenet" / "imagenet_osmr_g3_w0.25.pt").is_file()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=checkout,
                            capture_output=True, text=True, check=True).stdout
    assert status == ""
    listed = _cli(["weights", "list"], checkout)
    assert "installed  imagenet_osmr_g3_w0.25" in listed.stdout
