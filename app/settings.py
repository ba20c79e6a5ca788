"""Service settings, from environment variables prefixed PROPENSITY_ (read once, cached)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "PROPENSITY_"


class Settings(BaseSettings):
    """Every knob of the service; the README's configuration table lists the same fields."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    models_dir: Path = Field(default=Path("models"), description="directory of model bundles")
    default_model: str | None = Field(
        default=None,
        description="bundle that answers /predict and /recommend "
        "(default: the only bundle, or the first by name)",
    )
    max_rows: int = Field(default=1000, ge=1, description="rows per /predict request")
    default_k: int = Field(default=10, ge=1, description="items returned when k is not given")
    max_k: int = Field(default=100, ge=1, description="largest k a /recommend request may ask")
    max_candidates: int = Field(
        default=10_000, ge=1, description="candidate ids per /recommend request"
    )
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="request body cap")
    threads: int = Field(default=1, ge=0, description="onnxruntime intra-op threads (0: all)")
    inline_rows: int = Field(
        default=16,
        ge=0,
        description="/predict bodies up to this many rows' worth of bytes (512 each, 128 each "
        "sent as columns) are scored on the event loop; larger ones in a worker thread",
    )
    inline_items: int = Field(
        default=2000,
        ge=0,
        description="/recommend rankings of up to this many items run on the event loop; "
        "larger ones in a worker thread",
    )
    max_concurrency: int = Field(
        default=64,
        ge=1,
        description="requests handled at once (health checks aside); more get 503 + Retry-After",
    )
    request_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a request not answered in this time gets 504"
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated API keys; when set, every route but /health/* needs one",
    )
    api_keys_file: Path | None = Field(
        default=None, description="file of API keys, one per line (# comments), added to api_keys"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed by CORS (none: off)"
    )
    host: str = Field(default="127.0.0.1", description="address `python -m app` listens on")
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes")
    shutdown_grace_seconds: int = Field(
        default=15, ge=0, description="on SIGTERM, seconds given to requests in flight"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = Field(default=False, description="log one JSON object per line")

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("default_model", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # PROPENSITY_DEFAULT_MODEL= (as compose passes an unset variable) means "not chosen".
        return None if value == "" else value

    @model_validator(mode="after")
    def _k_within_limit(self) -> Settings:
        if self.default_k > self.max_k:
            raise ValueError(f"default_k ({self.default_k}) is above max_k ({self.max_k})")
        return self

    def keys(self) -> list[str]:
        """The API keys from the environment and the keys file (read when the app is made)."""
        keys = list(self.api_keys)
        if self.api_keys_file is not None:
            try:
                text = self.api_keys_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"api_keys_file {self.api_keys_file}: {exc.strerror}") from None
            keys += [
                line.strip()
                for line in text.splitlines()
                if line.strip() and not line.strip().startswith("#")
            ]
        return keys


@lru_cache
def get_settings() -> Settings:
    return Settings()
