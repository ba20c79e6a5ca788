"""The loaded models: which bundles exist, which loaded, which is the default, and readiness."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from app.bundle import Bundle, BundleError, load_bundle
from app.card import CARD_FILE, MODEL_FILE, ModelCard
from app.errors import ModelNotFoundError, NotReadyError
from app.scoring import check_encoding
from app.settings import Settings

log = logging.getLogger(__name__)

ENCODING_TOLERANCE = 1e-5


class Registry:
    """Bundles by name. Cards are read at creation (they shape the routes); sessions at load()."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cards: dict[str, tuple[Path, ModelCard]] = {}
        self.bundles: dict[str, Bundle] = {}
        self.problems: list[str] = []
        self.loaded = False
        self.stopping = False
        self._discover(settings.models_dir)
        self.default = self._choose_default()

    def _discover(self, root: Path) -> None:
        if not root.is_dir():
            self.problems.append(f"{root}: models directory not found")
            return
        # Directories starting with "." are bundles being written by training.
        for path in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            card_file = path / CARD_FILE
            try:
                if not card_file.exists():
                    if (path / MODEL_FILE).exists():
                        self.problems.append(f"{card_file}: missing")
                    continue
                card = ModelCard.model_validate_json(card_file.read_bytes())
            except OSError as exc:
                self.problems.append(f"{card_file}: cannot be read ({exc.strerror})")
                continue
            except ValidationError as exc:
                self.problems.append(f"{card_file}: not a valid card ({_first_error(exc)})")
                continue
            if card.name in self.cards:
                other = self.cards[card.name][0]
                self.problems.append(f"{path}: model name {card.name!r} also used by {other}")
                continue
            self.cards[card.name] = (path, card)
        if not self.cards and not self.problems:
            self.problems.append(f"{root}: no model bundles found")

    def _choose_default(self) -> str | None:
        wanted = self.settings.default_model
        if wanted is not None:
            if wanted not in self.cards:
                self.problems.append(
                    f"default model {wanted!r} not found in {self.settings.models_dir} "
                    f"(found: {', '.join(self.cards) or 'none'})"
                )
                return None
            return wanted
        return next(iter(self.cards), None)

    def load(self) -> None:
        """Open, verify and warm up every discovered bundle; record what failed and why."""
        for name, (path, _) in self.cards.items():
            try:
                bundle = load_bundle(path, self.settings.threads)
            except BundleError as exc:
                self.problems.append(str(exc))
                continue
            drift = check_encoding(bundle)
            if drift > ENCODING_TOLERANCE:
                log.warning(
                    "%s: ranking from the encoded catalogue differs from the whole graph by "
                    "%.2g; ranking with the whole graph instead",
                    name,
                    drift,
                )
                bundle = replace(bundle, encoded=None)
            self.bundles[name] = bundle
        for problem in self.problems:
            log.error("not serving: %s", problem)
        self.loaded = True
        if self.ready:
            log.info("ready: %s (default %s)", ", ".join(self.bundles), self.default)

    @property
    def serving(self) -> bool:
        """Every bundle loaded and sound: requests are answered (until the process exits)."""
        return self.loaded and not self.problems and bool(self.bundles)

    @property
    def ready(self) -> bool:
        """Serving and not shutting down: what /health/ready reports to load balancers. A
        request that still arrives while shutting down is answered, not refused."""
        return self.serving and not self.stopping

    def reason(self) -> str:
        """Why the service is not ready, in one line."""
        if self.stopping:
            return "shutting down"
        if self.problems:
            return "; ".join(self.problems)
        if not self.loaded:
            return "loading models"
        return "ready"

    def get(self, name: str) -> Bundle:
        if not self.serving:
            raise NotReadyError(self.reason())
        bundle = self.bundles.get(name)
        if bundle is None:
            raise ModelNotFoundError(name, list(self.bundles))
        return bundle


def _first_error(exc: ValidationError) -> str:
    e = exc.errors()[0]
    return f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}"
