"""`python -m shufflenet_viz`: every command works or fails on one line with status 2, and ends quietly when its
reader goes away (status 141) or on Ctrl-C (status 130)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dataclasses import dataclass

import pytest
from PIL import Image

from shufflenet_viz.cli import main

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run(capsys):
    """Run the command line in-process (starting Python per case would cost seconds each)."""
    def invoke(*args):
        returncode = main(list(args))
        captured = capsys.readouterr()
        return Result(returncode, captured.out, captured.err)
    return invoke


def test_python_dash_m_entry_point():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "shufflenet_viz", "flops", "--groups", "8", "--size", "0"],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_flops_table_quotes_the_paper(run):
    result = run("flops", "--groups", "3")
    assert result.returncode == 0
    assert "stage2.unit1" in result.stdout and "stage4.unit4" in result.stdout
    assert "complexity: 137.5 MFLOPs" in result.stdout and "paper, Table 1: 137 MFLOPs" in result.stdout


def test_flops_json(run):
    result = run("flops", "--groups", "1", "--width", "1.0", "--size", "224", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["total_macs"] == 143_078_976 and data["total_params"] == 1_531_936
    assert [u["name"] for u in data["units"]][1] == "stage2.unit1"
    assert data["units"][1]["ops"][0]["op"] == "compress_conv"


@pytest.mark.parametrize("args", [["flops", "--groups", "5"], ["flops", "--width", "abc"], ["flops", "--size", "0"],
                                  ["flops", "--size", "-3"], ["nonsense"], [], ["predict"],
                                  ["weights", "fetch", "imagenet", "--groups", "2"],
                                  ["train", "--groups", "3", "--data", "/nonexistent", "--out", "weights/x.pt"]])
def test_invalid_arguments_exit_2_with_one_line(run, args):
    result = run(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_fetch_help_documents_all_five_models_and_the_exit_statuses(run):
    result = run("weights", "fetch", "--help")
    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert "official 0.5x g=3 and g=8, osmr 0.25x g=3, osmr 1x g=1 and g=3" in text
    assert "installed, already there (stdout), not in the mirror, failed (stderr)" in text
    assert ("exit status: 0 every model asked for is installed (now or before), 1 some are, 2 none are (or bad "
            "input).") in text


def test_predict_a_good_file_and_refuse_a_bad_one(run, tmp_path):
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(image)
    result = run("predict", str(image), "--model", "cifar10_g1", "--top", "3", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"] == "cifar10_g1" and len(data["top"]) == 3
    assert sum(row["probability"] for row in data["top"]) <= 1.0 + 1e-6

    fake = tmp_path / "notes.jpg"
    fake.write_text("<html>not an image</html>")
    result = run("predict", str(image), str(fake))
    assert result.returncode == 2
    assert str(fake) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_predict_unknown_model(run):
    result = run("predict", str(ROOT / "README.md"), "--model", "nope")
    assert result.returncode == 2 and "no model named 'nope'" in result.stderr


# --- a reader that goes away, and Ctrl-C: real processes, since both end at the process's edge --------------

def _command_env() -> dict[str, str]:
    # Unbuffered, so that a line a command prints reaches the test at once (the Ctrl-C test waits for one).
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _help_commands(parser=None, prefix=()) -> list[tuple[str, ...]]:
    """`--help` of the program and of every subcommand at every depth, read from the parser itself so that
    commands added later are covered too."""
    import argparse

    from shufflenet_viz.cli import build_parser

    parser = parser or build_parser()
    found = [(*prefix, "--help")]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _help_commands(sub, (*prefix, name))
    return found


def _tiny_cifar(root: Path) -> Path:
    """A CIFAR-10 folder with one 32x32 picture per class and split: enough for `train` to start."""
    from shufflenet_viz.data import CIFAR10_CLASSES

    for split in ("train", "test"):
        for index, name in enumerate(CIFAR10_CLASSES):
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32), (index * 25, 100, 200 - index * 20)).save(root / split / name / "0.jpg")
    return root


def _start(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "shufflenet_viz", *command], cwd=ROOT, env=_command_env(),
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=300)
    return process.returncode, (stderr or b"").decode(errors="replace")


@pytest.fixture(scope="module")
def process_runs(tmp_path_factory):
    """Every command run as a real process, all started at once (each pays seconds for Python and torch to start),
    returning {case: (exit status, stderr)}:
    - each command with a reader that is gone before the first byte (`... | true`), and a usage error with
      stderr in the same pipe;
    - `flops` read up to its first line through the smallest pipe (`... | head -1`): the table is larger than the
      pipe, so the command is still writing when the reader leaves;
    - `train` interrupted with SIGINT (Ctrl-C) once it has printed its first line, so it is past start-up.
    """
    import fcntl
    import signal

    folder = tmp_path_factory.mktemp("cli")
    data = _tiny_cifar(folder / "cifar")
    samples = [str(p) for p in sorted((ROOT / "samples").glob("*.jpg"))]
    closed = {command: _start(*command) for command in
              [("flops", "--json"), ("predict", *samples), *_help_commands()]}
    for process in closed.values():
        process.stdout.close()
    # A usage error with stderr in the closed pipe too (`... 2>&1 | true`): nowhere left to say it.
    both = _start("flops", "--groups", "5", stderr=subprocess.STDOUT)
    both.stdout.close()

    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, 4096)  # the smallest pipe; the table is about 10 kB
    head = _start("flops", "--groups", "3", stdout=write_end)
    os.close(write_end)

    train = _start("train", "--groups", "1", "--width", "0.25", "--data", str(data), "--size", "32",
                   "--epochs", "100000", "--out", str(folder / "weights" / "tiny.pt"))
    try:
        with os.fdopen(read_end, "rb") as reader:
            head_line = reader.readline()
        train_line = train.stdout.readline()
        if train_line.startswith(b"training"):
            train.send_signal(signal.SIGINT)
        results = {("flops", "--groups", "3", "| head -1"): (*_finish(head), head_line),
                   ("train", "Ctrl-C"): (*_finish(train), train_line)}
        results.update({command: (*_finish(process), b"") for command, process in closed.items()})
        results[("flops", "--groups", "5", "2>&1")] = (*_finish(both), b"")
    finally:
        for process in [head, train, both, *closed.values()]:
            if process.poll() is None:
                process.kill()
    return results


def test_every_command_ends_quietly_when_its_reader_goes_away(process_runs):
    piped = {case: result for case, result in process_runs.items() if case[-1] not in ("Ctrl-C", "2>&1")}
    assert {case[0] for case in piped} >= {"flops", "predict", "train", "weights", "experiment", "--help"}
    for case, (status, stderr, _) in piped.items():
        # 141 = 128 + SIGPIPE, what a shell reports for `yes | head -1`; and nothing at all on stderr.
        assert (status, stderr) == (141, ""), case
    assert process_runs[("flops", "--groups", "3", "| head -1")][2].startswith(b"ShuffleNet")


def test_a_usage_error_with_no_stderr_left_still_exits_2(process_runs):
    status, _, _ = process_runs[("flops", "--groups", "5", "2>&1")]
    assert status == 2  # an error while reporting, or at exit while flushing, would give 1 or 120


def test_ctrl_c_ends_a_running_command_quietly(process_runs):
    status, stderr, first_line = process_runs[("train", "Ctrl-C")]
    assert first_line.startswith(b"training"), first_line
    assert (status, stderr.strip()) == (130, "interrupted")
