"""Dataset specs: a declarative TOML file per dataset naming the label and every feature."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from app.card import Feature, FeatureKind
from training.errors import TrainingError

SPEC_DIR = Path(__file__).parent / "specs"


class DatasetSpec(BaseModel):
    """What a table must hold to train a model: its label and its features."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    source: str | None = None
    license: str | None = None
    label: str
    features: list[Feature]

    @model_validator(mode="after")
    def _coherent(self) -> DatasetSpec:
        names = [f.name for f in self.features]
        if not names:
            raise ValueError("a spec needs at least one feature")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}")
        if self.label in names:
            raise ValueError(f"the label {self.label!r} is also listed as a feature")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def of_kind(self, kind: FeatureKind) -> list[Feature]:
        return [f for f in self.features if f.kind is kind]


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and check a dataset spec; a bare name looks in the shipped specs directory."""
    p = Path(path)
    if not p.exists() and p.suffix == "" and (SPEC_DIR / f"{p.name}.toml").exists():
        p = SPEC_DIR / f"{p.name}.toml"
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainingError(f"spec {p}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise TrainingError(f"spec {p}: not valid TOML ({exc})") from None
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
        raise TrainingError(f"spec {p}: {problems}") from None
