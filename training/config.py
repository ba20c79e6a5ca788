"""Training hyperparameters: defaults, a TOML config file, and command-line overrides on top."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.errors import TrainingError


class TrainConfig(BaseModel):
    """How to split, fit and evaluate; every field can come from a file or the CLI."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: list[int] = Field(default=[32, 16], min_length=1)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    l2: float = Field(default=0.0, ge=0.0, description="L2 penalty on the hidden layers' weights")
    learning_rate: float = Field(default=1e-3, gt=0.0)
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=32, ge=1)
    # "balanced" weighs each class by n / (2 * count); a mapping gives the weight of 0 and 1.
    class_weight: Literal["none", "balanced"] | dict[str, float] = "none"
    early_stopping: bool = False
    patience: int = Field(default=3, ge=1)
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    seed: int = 42
    parity_tolerance: float = Field(default=1e-5, gt=0.0)

    @field_validator("layers")
    @classmethod
    def _positive_layers(cls, v: list[int]) -> list[int]:
        if any(u < 1 for u in v):
            raise ValueError("every layer needs at least one unit")
        return v

    @field_validator("class_weight")
    @classmethod
    def _binary_weights(
        cls, v: Literal["none", "balanced"] | dict[str, float]
    ) -> Literal["none", "balanced"] | dict[str, float]:
        if isinstance(v, dict) and (set(v) != {"0", "1"} or min(v.values()) <= 0):
            raise ValueError('give a positive weight for "0" and "1"')
        return v


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the file's [train] table (or top level), then non-None overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TrainingError(f"config {p}: no such file") from None
        except tomllib.TOMLDecodeError as exc:
            raise TrainingError(f"config {p}: not valid TOML ({exc})") from None
        values.update(raw.get("train", raw))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as exc:
        raise TrainingError(f"config: {_problems(exc)}") from None
