"""The training command line as a user runs it: help, bad input, and reproducible output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.synthetic import generate_sessions

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert "train" in result.stdout
    assert "synth-sessions" in result.stdout
    sub = _run("train", "--help")
    assert "--cv K" in sub.stdout
    assert "--early-stopping" in sub.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--data", "nowhere.csv"], "error: data nowhere.csv: no such file"),
        (["--spec", "no_such_spec"], "error: spec no_such_spec: no such file"),
        (["--epochs", "0"], "error: config: epochs: Input should be greater than or equal to 1"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    data = tmp_path / "s.csv"
    generate_sessions(200, seed=3).to_csv(data, index=False)
    base = {"--spec": "synthetic_sessions", "--data": str(data), "--out": str(tmp_path / "m")}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = _run("train", *[x for kv in base.items() for x in kv])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == reason
    assert not (tmp_path / "m").exists()


def test_a_table_that_does_not_fit_the_spec_names_the_column(tmp_path: Path) -> None:
    data = tmp_path / "s.csv"
    generate_sessions(200, seed=3).drop(columns=["cart_adds"]).to_csv(data, index=False)
    result = _run(
        "train", "--spec", "synthetic_sessions", "--data", str(data), "--out", str(tmp_path / "m")
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("missing column(s) 'cart_adds'")


def test_same_data_config_and_seed_give_the_same_bytes(tmp_path: Path) -> None:
    data = tmp_path / "s.parquet"
    assert (
        _run("synth-sessions", "--rows", "4000", "--seed", "5", "--out", str(data)).returncode == 0
    )
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = _run(
            "train",
            "--spec",
            "synthetic_sessions",
            "--data",
            str(data),
            "--out",
            str(out),
            "--epochs",
            "3",
            "--seed",
            "11",
            "--name",
            "same",
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outs.append(out)
    a, b = outs
    assert (a / "model.onnx").read_bytes() == (b / "model.onnx").read_bytes()
    card_a, card_b = (json.loads((o / "card.json").read_text()) for o in outs)
    assert card_a["metrics"] == card_b["metrics"]
    assert card_a["baselines"] == card_b["baselines"]
    assert card_a["version"] == card_b["version"]

    # Cross-validating first (more graphs traced in the process) must not change the model.
    with_cv = tmp_path / "cv"
    result = _run(
        "train",
        "--spec",
        "synthetic_sessions",
        "--data",
        str(data),
        "--out",
        str(with_cv),
        "--epochs",
        "3",
        "--seed",
        "11",
        "--name",
        "same",
        "--cv",
        "2",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (with_cv / "model.onnx").read_bytes() == (a / "model.onnx").read_bytes()

    other = tmp_path / "c"
    result = _run(
        "train",
        "--spec",
        "synthetic_sessions",
        "--data",
        str(data),
        "--out",
        str(other),
        "--epochs",
        "3",
        "--seed",
        "12",
        "--name",
        "same",
    )
    assert result.returncode == 0
    assert (other / "model.onnx").read_bytes() != (a / "model.onnx").read_bytes()
