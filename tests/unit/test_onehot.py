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


def _rewritten(model: onnx.ModelProto) -> bool:
    return "OneHotEncoder" not in [n.op_type for n in model.graph.node]


def _encoders(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == "OneHotEncoder"]


def _block_concat(model: onnx.ModelProto) -> onnx.NodeProto:
    outputs = {e.output[0] for e in _encoders(model)}
    return next(n for n in model.graph.node if n.op_type == "Concat" and outputs & set(n.input))


def test_the_rewritten_block_gives_the_same_bits(three_columns) -> None:  # type: ignore[no-untyped-def]
    pre = build_preprocessor(three_columns).fit(_frame())
    before = _graph(three_columns)
    after = compact_one_hot(before)
    ops = [n.op_type for n in after.graph.node]
    assert _rewritten(after) and ops.count("LabelEncoder") == 1
    assert "Split" not in [n.op_type for n in after.graph.node if "categories" in n.input]
    probes = _probes()
    expected = _run(before, probes, three_columns)
    got = _run(after, probes, three_columns)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)  # to the bit: ones and zeros at the same places
    # And what scikit-learn computes: a category another column knows is unseen in this one.
    np.testing.assert_allclose(got, pre.transform(probes), atol=1e-5)


def test_one_row_and_an_empty_batch_keep_their_shapes(three_columns) -> None:  # type: ignore[no-untyped-def]
    before = _graph(three_columns)
    after = compact_one_hot(before)
    width = before.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    for frame in (_frame().head(1), _frame().head(0)):
        got = _run(after, frame, three_columns)
        assert got.shape == (len(frame), width)
        assert np.array_equal(got, _run(before, frame, three_columns))


def test_encodings_concatenated_in_another_order_keep_their_places(three_columns) -> None:  # type: ignore[no-untyped-def]
    """The block's column order is the Concat's, not the split's."""
    before = _graph(three_columns)
    concat = _block_concat(before)
    reordered = list(concat.input)[::-1]
    del concat.input[:]
    concat.input.extend(reordered)
    after = compact_one_hot(before)
    assert _rewritten(after)
    probes = _probes()
    assert np.array_equal(_run(after, probes, three_columns), _run(before, probes, three_columns))


def test_a_column_picked_by_a_gather_first_is_rewritten_too(three_columns) -> None:  # type: ignore[no-untyped-def]
    """skl2onnx may pick a column out of its [N, 1] tensor (Gather of index 0) before encoding."""
    before = _graph(three_columns)
    encoder = _encoders(before)[1]
    column = encoder.input[0]
    before.graph.initializer.append(
        onnx.numpy_helper.from_array(np.array([0], dtype=np.int64), "pick_first")
    )
    gather = onnx.helper.make_node("Gather", [column, "pick_first"], ["picked"], axis=1)
    encoder.input[0] = "picked"
    nodes = list(before.graph.node)
    nodes.insert(nodes.index(encoder), gather)
    del before.graph.node[:]
    before.graph.node.extend(nodes)
    after = compact_one_hot(before)
    assert _rewritten(after) and "Gather" not in [
        n.op_type for n in after.graph.node if "picked" in n.output
    ]
    probes = _probes()
    assert np.array_equal(_run(after, probes, three_columns), _run(before, probes, three_columns))


def test_new_names_do_not_clash_with_the_graphs(three_columns) -> None:  # type: ignore[no-untyped-def]
    before = _graph(three_columns)
    before.graph.initializer.append(
        onnx.numpy_helper.from_array(np.array([7], dtype=np.int64), "onehot_width")
    )
    after = compact_one_hot(before)  # the checker refuses duplicate names
    assert _rewritten(after)
    names = [i.name for i in after.graph.initializer]
    assert names.count("onehot_width") == 1 and any(n.startswith("onehot_2_") for n in names)
    probes = _probes()
    assert np.array_equal(_run(after, probes, three_columns), _run(before, probes, three_columns))


def _unchanged(model: onnx.ModelProto) -> bool:
    return compact_one_hot(model).SerializeToString() == model.SerializeToString()


def test_fewer_than_three_categorical_columns_are_left_as_they_are(tiny_spec) -> None:  # type: ignore[no-untyped-def]
    """With two columns the lookups were measured no faster: the encoders stay."""
    assert _unchanged(_graph(tiny_spec))


def test_a_block_with_a_string_imputer_is_left_as_it_is(three_columns) -> None:  # type: ignore[no-untyped-def]
    """An imputer between the split and the encoders is not the pattern: nothing changes."""
    features = [
        f.model_copy(update={"missing": Missing.MOST_FREQUENT})
        if f.kind.value == "categorical"
        else f
        for f in three_columns.features
    ]
    model = _graph(three_columns.model_copy(update={"features": features}))
    # skl2onnx imputes the categorical columns together before encoding them.
    assert ["browser", "device", "channel"] in [list(n.input) for n in model.graph.node]
    assert _unchanged(model)


def test_a_model_without_the_operators_it_needs_is_left_as_it_is(three_columns) -> None:  # type: ignore[no-untyped-def]
    """ai.onnx.ml 1 has a LabelEncoder of another signature: no rewrite."""
    model = _graph(three_columns)
    _declare_opsets(model, {"": OPSET, "ai.onnx.ml": 1})
    assert _unchanged(model)


@pytest.mark.parametrize("which", [0, 2])
def test_an_encoding_read_elsewhere_is_left_as_it_is(three_columns, which: int) -> None:  # type: ignore[no-untyped-def]
    """The encoders' outputs must feed the block and nothing else."""
    model = _graph(three_columns)
    encoded = _encoders(model)[which].output[0]
    model.graph.output.append(onnx.helper.make_tensor_value_info(encoded, 1, None))
    assert _unchanged(model)


def test_a_block_reshaped_otherwise_is_left_as_it_is(three_columns) -> None:  # type: ignore[no-untyped-def]
    model = _graph(three_columns)
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
    shape = next(i for i in model.graph.initializer if i.name == reshape.input[1])
    shape.CopyFrom(onnx.numpy_helper.from_array(np.array([1, -1], dtype=np.int64), shape.name))
    assert _unchanged(model)


def test_a_split_into_fewer_parts_than_columns_is_left_as_it_is(three_columns) -> None:  # type: ignore[no-untyped-def]
    """Three outputs of a split over six columns would be two columns each."""
    model = _graph(three_columns)
    declared = next(i for i in model.graph.input if i.name == "categories")
    declared.type.tensor_type.shape.dim[1].dim_value = 6
    assert _unchanged(model)


def test_an_encoder_that_is_not_one_hot_for_unknowns_is_left_as_it_is(three_columns) -> None:  # type: ignore[no-untyped-def]
    """zeros=0 makes an unknown category an error, which lookups would not reproduce."""
    model = _graph(three_columns)
    zeros = next(a for a in _encoders(model)[2].attribute if a.name == "zeros")
    zeros.i = 0
    assert _unchanged(model)


def test_a_split_column_read_elsewhere_is_left_as_it_is(three_columns) -> None:  # type: ignore[no-untyped-def]
    model = _graph(three_columns)
    column = _encoders(model)[0].input[0]
    model.graph.node.append(onnx.helper.make_node("Identity", [column], ["also"]))
    model.graph.output.append(onnx.helper.make_tensor_value_info("also", 8, None))
    assert _unchanged(model)


def test_a_block_concatenated_with_something_else_is_left_as_it_is(three_columns) -> None:  # type: ignore[no-untyped-def]
    model = _graph(three_columns)
    model.graph.initializer.append(
        onnx.numpy_helper.from_array(np.zeros((1, 1, 2), dtype=np.float32), "extra")
    )
    _block_concat(model).input.append("extra")
    assert _unchanged(model)


@pytest.mark.parametrize(("axis", "index"), [(1, [0, 0]), (0, [0])])
def test_a_gather_that_does_more_than_pick_the_column_is_left_as_it_is(
    three_columns, axis: int, index: list[int]
) -> None:  # type: ignore[no-untyped-def]
    model = _graph(three_columns)
    encoder = _encoders(model)[0]
    model.graph.initializer.append(
        onnx.numpy_helper.from_array(np.array(index, dtype=np.int64), "pick")
    )
    gather = onnx.helper.make_node("Gather", [encoder.input[0], "pick"], ["picked"], axis=axis)
    encoder.input[0] = "picked"
    model.graph.node.insert(0, gather)
    assert _unchanged(model)
