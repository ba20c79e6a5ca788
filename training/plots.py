"""ROC, precision-recall, calibration and lift plots of the model beside its baselines (PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

PLOTS = ("roc.png", "precision_recall.png", "calibration.png", "lift.png")


def _figure():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5.5, 4.5), dpi=100)


def _save(fig, ax, path: Path, title: str) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    # A fixed creation date in the metadata keeps the bytes identical between runs.
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def write_plots(y: np.ndarray, scores: dict[str, np.ndarray], out_dir: Path) -> list[Path]:
    """One PNG per plot in PLOTS, each with a curve per scorer; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in PLOTS]

    fig, ax = _figure()
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    _save(fig, ax, paths[0], "ROC")

    fig, ax = _figure()
    for name, p in scores.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, label=name)
    ax.axhline(y.mean(), color="k", ls="--", lw=0.8, label="base rate")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    _save(fig, ax, paths[1], "Precision-recall")

    fig, ax = _figure()
    edges = np.linspace(0, 1, 11)
    for name, p in scores.items():
        idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, 9)
        filled = [b for b in range(10) if (idx == b).any()]
        ax.plot(
            [p[idx == b].mean() for b in filled],
            [y[idx == b].mean() for b in filled],
            marker="o",
            label=name,
        )
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed purchase rate")
    _save(fig, ax, paths[2], "Calibration (10 bins)")

    fig, ax = _figure()
    fractions = np.linspace(0.01, 1.0, 100)
    for name, p in scores.items():
        order = np.argsort(-p, kind="stable")
        hits = np.cumsum(y[order])
        counts = np.maximum(1, np.round(fractions * len(y)).astype(int))
        ax.plot(fractions, hits[counts - 1] / counts / y.mean(), label=name)
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label="random")
    ax.set_xlabel("fraction of sessions targeted (by score)")
    ax.set_ylabel("lift")
    _save(fig, ax, paths[3], "Cumulative lift")
    return paths
