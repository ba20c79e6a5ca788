"""Settings come from PROPENSITY_* environment variables and refuse contradictions."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_settings_read_the_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROPENSITY_MODELS_DIR", "/srv/models")
    monkeypatch.setenv("PROPENSITY_MAX_ROWS", "50")
    monkeypatch.setenv("PROPENSITY_LOG_JSON", "true")
    monkeypatch.setenv("MAX_ROWS", "7")  # unprefixed: not ours
    s = Settings()
    assert (s.models_dir, s.max_rows, s.log_json) == (Path("/srv/models"), 50, True)


def test_a_default_k_above_the_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="default_k"):
        Settings(default_k=20, max_k=10)


def test_a_bad_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROPENSITY_MAX_ROWS", "lots")
    with pytest.raises(ValidationError, match="max_rows"):
        Settings()


def test_an_empty_default_model_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROPENSITY_DEFAULT_MODEL", "")
    assert Settings().default_model is None


@pytest.mark.parametrize(("given", "level"), [("INFO", "info"), (" Warning ", "warning")])
def test_the_log_level_is_read_in_any_case(
    monkeypatch: pytest.MonkeyPatch, given: str, level: str
) -> None:
    monkeypatch.setenv("PROPENSITY_LOG_LEVEL", given)
    assert Settings().log_level == level


def test_an_unknown_log_level_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROPENSITY_LOG_LEVEL", "loud")
    with pytest.raises(ValidationError, match="log_level"):
        Settings()
