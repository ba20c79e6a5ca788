"""Metrics against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    choose_threshold,
    compute_metrics,
    expected_calibration_error,
    lift_at,
    summarise,
)


def test_threshold_maximises_f1_on_the_given_data() -> None:
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.8])
    # At 0.35 every positive is caught with one false positive: F1 = 8/9, the best cut.
    assert choose_threshold(y, p) == pytest.approx(0.35)


def test_counts_at_the_threshold() -> None:
    y = np.array([1, 1, 0, 0, 1])
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.7])
    m = compute_metrics(y, p, 0.5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["roc_auc"] == pytest.approx(5 / 6)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))


def test_calibration_error_of_a_perfect_and_a_biased_scorer() -> None:
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.8)) == pytest.approx(0.3)


def test_lift_of_a_perfect_ranking_is_the_inverse_base_rate() -> None:
    y = np.array([1] * 10 + [0] * 90)
    p = np.linspace(1, 0, 100)
    assert lift_at(y, p, 0.1) == pytest.approx(10.0)
    assert lift_at(y, p[::-1], 0.1) == pytest.approx(0.0)


def test_summary_is_mean_and_sample_std() -> None:
    s = summarise([{"roc_auc": 0.9}, {"roc_auc": 0.8}, {"roc_auc": 0.7}])
    assert s["roc_auc"] == (pytest.approx(0.8), pytest.approx(0.1))
