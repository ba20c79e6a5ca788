"""The one-hot block rewritten as lookups: the same bits out, fewer nodes, and hands off
anything that is not exactly the pattern skl2onnx writes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest

from app.card import MISSING_CATEGORY, Missing
from training.export import ML_OPSET, OPSET, convert_preprocessor, onnx_feeds, pack_inputs
from training.onehot import compact_one_hot
from training.preprocess import build_preprocessor


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "views": [0.0, 1.0, 3.0, np.nan, 99.0, 4.0],
            "rate": [0.1, 0.2, 0.3, 0.4, np.nan, 0.5],
            "browser": ["1", "2", "2", "3", "1", "12"],
            "device": ["mobile", "desktop", MISSING_CATEGORY, "mobile", "mobile", "tablet"],
            "weekend": [1.0, 0.0, 0.0, np.nan, 0.0, 1.0],
            "channel": ["ads", "mail", "ads", "direct", MISSING_CATEGORY, "mail"],
        }
    )


@pytest.fixture
def three_columns(tiny_spec):  # type: ignore[no-untyped-def]
    """The tiny spec with a third categorical column: the fewest the rewrite applies to."""
    device = next(f for f in tiny_spec.features if f.name == "device")
    channel = device.model_copy(update={"name": "channel", "values": None})
    return tiny_spec.model_copy(update={"features": [*tiny_spec.features, channel]})


def _graph(spec) -> onnx.ModelProto:  # type: ignore[no-untyped-def]
    """The fitted preprocessor alone as the service's packed graph: raw columns to the
    encoded block."""
    pre = build_preprocessor(spec).fit(_frame())
    model = pack_inputs(convert_preprocessor(pre, spec.features), spec.features)
    _declare_opsets(model, {"": OPSET, "ai.onnx.ml": ML_OPSET})  # as merge() does
    return model


def _declare_opsets(model: onnx.ModelProto, versions: dict[str, int]) -> None:
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in versions.items())


def _run(model: onnx.ModelProto, frame: pd.DataFrame, spec) -> np.ndarray:  # type: ignore[no-untyped-def]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, onnx_feeds(frame, spec.features))
    return np.asarray(out)


def _probes() -> pd.DataFrame:
    """Known categories in every column, categories only another column knows ("mobile" as a
    browser, "2" as a device), unseen and missing ones, and the empty string."""
    frame = _frame()
    swapped = frame.assign(
        browser=frame["device"], device=frame["channel"], channel=frame["browser"]
    )
    odd = frame.assign(browser=["", "x", MISSING_CATEGORY, "1 ", "é", "99"], channel="mobile")
    return pd.concat([frame, swapped, odd], ignore_index=True)


def test_the_rewritten_block_gives_the_same_bits(three_columns) -> None:  # type: ignore[no-untyped-def]
    before = _graph(three_columns)
    after = compact_one_hot(before)
    ops = [n.op_type for n in after.graph.node]
    assert "OneHotEncoder" not in ops and ops.count("LabelEncoder") == 1
    assert "Split" not in [n.op_type for n in after.graph.node if "categories" in n.input]
    probes = _probes()
    expected = _run(before, probes, three_columns)
    got = _run(after, probes, three_columns)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)  # to the bit: ones and zeros at the same places
    # Categories known only to the other column encode as unseen: all zeros in that column.
    assert expected[len(_frame()) :].sum() < expected[: len(_frame())].sum()


def test_one_row_and_an_empty_batch_keep_their_shapes(three_columns) -> None:  # type: ignore[no-untyped-def]
    before = _graph(three_columns)
    after = compact_one_hot(before)
    for frame in (_frame().head(1), _frame().head(0)):
        got = _run(after, frame, three_columns)
        assert got.shape == (
            len(frame),
            before.graph.output[0].type.tensor_type.shape.dim[1].dim_value,
        )
        assert np.array_equal(got, _run(before, frame, three_columns))


def test_fewer_than_three_categorical_columns_are_left_as_they_are(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    """With two columns the lookups were measured no faster: the encoders stay."""
    model = _graph(tiny_spec)
    assert compact_one_hot(model).SerializeToString() == model.SerializeToString()


@pytest.mark.parametrize("missing", [Missing.MOST_FREQUENT])
def test_a_block_with_a_string_imputer_is_left_as_it_is(three_columns, missing) -> None:  # type: ignore[no-untyped-def]
    """An imputer between the split and the encoders is not the pattern: nothing changes."""
    features = [
        f.model_copy(update={"missing": missing}) if f.kind.value == "categorical" else f
        for f in three_columns.features
    ]
    spec = three_columns.model_copy(update={"features": features})
    model = _graph(spec)
    # skl2onnx imputes the categorical columns together before encoding them.
    assert ["browser", "device", "channel"] in [list(n.input) for n in model.graph.node]
    assert compact_one_hot(model).SerializeToString() == model.SerializeToString()


def test_a_model_without_the_operators_it_needs_is_left_as_it_is(three_columns) -> None:  # type: ignore[no-untyped-def]
    """ai.onnx.ml 1 has a LabelEncoder of another signature: no rewrite."""
    model = _graph(three_columns)
    _declare_opsets(model, {"": OPSET, "ai.onnx.ml": 1})
    assert compact_one_hot(model).SerializeToString() == model.SerializeToString()
