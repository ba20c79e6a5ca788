"""The README's curl examples, run as written against a real service on the shipped bundles.

Every `curl` line of every `sh` block must succeed, and where the README shows the answer (a
`json` block right after the command's block) the service must give that answer: the figures a
user reads are the figures the shipped models produce.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.live import ROOT, start_service, stop_service

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def curl_commands(script: str) -> list[str]:
    """The curl commands of a shell block, as the shell reads them: a command goes on over a
    trailing backslash and over line breaks inside quotes."""
    commands, current = [], ""
    for line in script.splitlines():
        current = f"{current}\n{line}" if current else line
        if current.endswith("\\"):
            continue
        try:
            shlex.split(current, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        if current.strip().startswith("curl "):
            commands.append(current.strip())
        current = ""
    return commands


def examples() -> list[tuple[str, Any]]:
    """(command, the answer shown after it or None), in README order."""
    found = blocks(README.read_text())
    out: list[tuple[str, Any]] = []
    for i, (lang, body) in enumerate(found):
        if lang != "sh":
            continue
        commands = curl_commands(body)
        shown = None
        if commands and i + 1 < len(found) and found[i + 1][0] == "json":
            shown = json.loads(found[i + 1][1])
        out += [(c, shown if j == len(commands) - 1 else None) for j, c in enumerate(commands)]
    return out


def same(expected: Any, got: Any, where: str = "") -> None:
    """Equal JSON, floats to 1e-6 (the README rounds nothing, but platforms may differ)."""
    if isinstance(expected, float) or isinstance(got, float):
        assert isinstance(got, int | float), where
        assert math.isclose(expected, got, rel_tol=1e-6, abs_tol=1e-9), (where, expected, got)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and expected.keys() == got.keys(), (where, expected, got)
        for key in expected:
            same(expected[key], got[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(expected) == len(got), (where, expected, got)
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            same(e, g, f"{where}[{i}]")
    else:
        assert expected == got, (where, expected, got)


EXAMPLES = examples()


def test_the_readme_has_curl_examples_for_every_endpoint() -> None:
    commands = " ".join(c for c, _ in EXAMPLES)
    for path in (
        "/health/live",
        "/health/ready",
        "/models ",
        "/models/storefront",
        "/metrics",
        "/openapi.json",
        ":8000/predict",
        ":8000/recommend",
        "/models/uci_online_shoppers/predict",
        "/models/uci_online_shoppers/recommend",
    ):
        assert path in commands, path
    assert sum(shown is not None for _, shown in EXAMPLES) >= 4


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # As `make run` starts it: the shipped bundles, storefront the default.
    log = tmp_path_factory.mktemp("readme") / "service.log"
    proc, url = start_service(log, default_model="storefront")
    try:
        yield url
    finally:
        stop_service(proc)


@pytest.mark.parametrize(("command", "shown"), EXAMPLES, ids=[c[:90] for c, _ in EXAMPLES])
def test_a_readme_curl_example_works_as_written(
    command: str, shown: Any, service: str, tmp_path: Path
) -> None:
    run = command.replace("http://127.0.0.1:8000", service)
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {run}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    if "|" in command or " -o " in command:
        assert done.stdout.strip() or list(tmp_path.iterdir()), command
        return
    answer = json.loads(done.stdout)
    if shown is not None:
        same(shown, answer)
    else:
        assert "error" not in answer, (command, answer)
