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


def test_out_never_replaces_what_is_not_a_bundle(tmp_path: Path) -> None:
    data = tmp_path / "s.csv"
    generate_sessions(200, seed=3).to_csv(data, index=False)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("keep me too")
    cases = [
        (str(precious), "is not empty and is not a model bundle"),
        (str(a_file), "is a file, not a directory"),
        (str(tmp_path / "MyStore"), "model name 'MyStore' (from --out): use lower-case"),
        (".", "is the current directory or above it"),
    ]
    for out, reason in cases:
        result = _run("train", "--spec", "synthetic_sessions", "--data", str(data), "--out", out)
        assert result.returncode == 2, (out, result.stderr[-2000:])
        assert reason in result.stderr.strip().splitlines()[-1], (out, result.stderr[-500:])
    assert (precious / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt"]
    assert a_file.read_text() == "keep me too"
    assert (ROOT / "README.md").is_file()  # --out . refused before anything was touched


def test_retraining_replaces_a_bundle_and_every_flag_reaches_the_card(tmp_path: Path) -> None:
    """Also: a column with no value at all (here a number and a flag) still trains and exports."""
    data = tmp_path / "s.csv"
    frame = generate_sessions(600, seed=3)
    frame["session_seconds"] = None
    frame["discount_seen"] = None
    frame.to_csv(data, index=False)
    out = tmp_path / "m"
    for l2 in ("0", "0.5"):
        result = _run(
            "train", "--spec", "synthetic_sessions", "--data", str(data), "--out", str(out),
            "--epochs", "1", "--l2", l2, "--dropout", "0.1", "--learning-rate", "0.002",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        assert "'session_seconds' has no usable value" in result.stderr
    hyper = json.loads((out / "card.json").read_text())["hyperparameters"]
    assert (hyper["l2"], hyper["dropout"], hyper["learning_rate"]) == (0.5, 0.1, 0.002)


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
