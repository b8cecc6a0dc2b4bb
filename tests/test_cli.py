"""`python -m shufflenet_viz`: every command works or fails on one line with status 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dataclasses import dataclass

import pytest
from PIL import Image

from shufflenet_viz.cli import main

ROOT = Path(__file__).resolve().parent.parent


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
