"""The evaluation report next to the model: JSON for machines, Markdown for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.card import ModelCard
from training.metrics import HIGHER_IS_BETTER, METRIC_NAMES

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def _table(rows: dict[str, dict[str, str]], first: str) -> list[str]:
    columns = list(rows)
    out = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for metric in METRIC_NAMES:
        if all(metric in rows[c] for c in columns):
            arrow = "↑" if HIGHER_IS_BETTER[metric] else "↓"
            out.append(
                f"| {metric} {arrow} | " + " | ".join(rows[c][metric] for c in columns) + " |"
            )
    return out


def render_markdown(card: ModelCard, extra: dict[str, Any]) -> str:
    """A page a data scientist can read: data, cleaning, metrics beside baselines, CV, plots."""
    lines = [
        f"# {card.name} {card.version}",
        "",
        card.description or "Purchase-propensity model.",
        "",
        f"- Data: `{card.dataset.file}` ({card.dataset.rows} rows, {card.dataset.positives} "
        f"positive), sha256 `{card.dataset.sha256[:16]}…`",
        f"- Split: {extra['split']}",
        f"- Threshold: {card.threshold:.4f} ({card.threshold_rule}); "
        "precision, recall, F1 and accuracy are at this threshold",
        f"- Seed: {card.seed}; ONNX parity with the Python pipeline: max |diff| = "
        f"{card.parity_max_abs_diff:.2e}",
        f"- Created {card.created_at.isoformat(timespec='seconds')}; training took "
        f"{extra['seconds']:.1f} s",
        "",
        "## Held-out test metrics",
        "",
    ]
    rows = {"model": {k: f"{v:.4f}" for k, v in card.metrics.items()}}
    rows |= {n: {k: f"{v:.4f}" for k, v in m.items()} for n, m in card.baselines.items()}
    lines += _table(rows, "metric")
    if card.cross_validation:
        k = extra.get("cv_folds")
        lines += ["", f"## {k}-fold stratified cross-validation (mean ± std over folds)", ""]
        cv_rows = {
            n: {m: f"{s.mean:.4f} ± {s.std:.4f}" for m, s in ms.items()}
            for n, ms in card.cross_validation.items()
        }
        lines += _table(cv_rows, "metric")
    ranking = extra.get("ranking")
    if ranking:
        lines += [
            "",
            f"## Ranking the whole catalogue ({ranking['catalogue']} items) for the "
            f"{ranking['users']} users who bought after {ranking['cutoff']}",
            "",
        ]
        names = list(ranking["metrics"])
        metrics = list(next(iter(ranking["metrics"].values())))
        lines += ["| scorer | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        for n in names:
            values = " | ".join(f"{ranking['metrics'][n][m]:.4f}" for m in metrics)
            lines.append(f"| {n} | {values} |")
    lines += ["", "## Data cleaning", ""] + [f"- {line}" for line in extra["cleaning"]]
    lines += [
        "",
        "## Hyperparameters",
        "",
        "```json",
        json.dumps(card.hyperparameters, indent=2),
        "```",
        "",
    ]
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in extra["plots"]]
    if card.dataset.source:
        lines += [
            "",
            f"Data source: {card.dataset.source}"
            + (f" ({card.dataset.license})" if card.dataset.license else ""),
        ]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, card: ModelCard, extra: dict[str, Any]) -> list[Path]:
    """report.json (the card's metrics plus what only the report needs) and report.md."""
    payload = {
        "name": card.name,
        "version": card.version,
        "threshold": card.threshold,
        "metrics": {"model": card.metrics, **card.baselines},
        "cross_validation": (
            {
                n: {m: s.model_dump() for m, s in ms.items()}
                for n, ms in card.cross_validation.items()
            }
            if card.cross_validation
            else None
        ),
        **extra,
    }
    json_path, md_path = out_dir / REPORT_JSON, out_dir / REPORT_MD
    json_path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(card, extra), encoding="utf-8")
    return [json_path, md_path]
