"""Export: preprocessor and network merged into one ONNX graph, checked against Python."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper

from app.card import (
    CATEGORIES_INPUT,
    MISSING_CATEGORY,
    NUMBERS_INPUT,
    Feature,
    FeatureKind,
    packed_columns,
)
from training.errors import TrainingError
from training.network import INPUT_NAME
from training.onehot import compact_one_hot

log = logging.getLogger(__name__)

OPSET = 17
ML_OPSET = 3
OUTPUT_NAME = "probability"
ENCODED_OUTPUT = "encoded"
UNSEEN_CATEGORY = "__unseen_in_training__"


def _log1p_shape(operator: Any) -> None:
    operator.outputs[0].type = copy.deepcopy(operator.inputs[0].type)


def _log1p_convert(scope: Any, operator: Any, container: Any) -> None:
    """FunctionTransformer(np.log1p) as Log(x + 1); any other function is refused."""
    if operator.raw_operator.func is not np.log1p:
        raise TrainingError(
            f"cannot export FunctionTransformer({operator.raw_operator.func!r}); only np.log1p"
        )
    one = scope.get_unique_variable_name("one")
    container.add_initializer(one, TensorProto.FLOAT, [], [1.0])
    shifted = scope.get_unique_variable_name("plus_one")
    container.add_node(
        "Add",
        [operator.inputs[0].full_name, one],
        shifted,
        name=scope.get_unique_operator_name("Add"),
    )
    container.add_node(
        "Log", [shifted], operator.outputs[0].full_name, name=scope.get_unique_operator_name("Log")
    )


def convert_preprocessor(preprocessor: Any, features: list[Feature]) -> onnx.ModelProto:
    """The fitted ColumnTransformer as ONNX: one [N, 1] input per raw column, named after it."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.preprocessing import FunctionTransformer

    initial_types = [
        (
            f.name,
            StringTensorType([None, 1])
            if f.kind is FeatureKind.CATEGORICAL
            else FloatTensorType([None, 1]),
        )
        for f in features
    ]
    return convert_sklearn(
        preprocessor,
        name="preprocessor",
        initial_types=initial_types,
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        custom_conversion_functions={FunctionTransformer: _log1p_convert},
        custom_shape_calculators={FunctionTransformer: _log1p_shape},
    )


def convert_network(network: Any, n_inputs: int) -> onnx.ModelProto:
    """The Keras network as ONNX through tf.function + tf2onnx.from_function."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, n_inputs), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def serve(x: Any) -> Any:
        return network(x, training=False)

    model, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET)
    return model


def merge(pre: onnx.ModelProto, net: onnx.ModelProto) -> onnx.ModelProto:
    """One graph: raw columns in, `probability` [N, 1] out."""
    pre, net = copy.deepcopy(pre), copy.deepcopy(net)
    # The converters record the lowest opsets (and IR versions) they needed, which differ between
    # them; merge_models wants one set. Both were converted for OPSET, so that is what they declare.
    for model in (pre, net):
        versions = {o.domain: o.version for o in model.opset_import}
        versions[""] = OPSET
        if "ai.onnx.ml" in versions:
            versions["ai.onnx.ml"] = ML_OPSET
        del model.opset_import[:]
        model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))
    net.ir_version = pre.ir_version = max(pre.ir_version, net.ir_version)
    (pre_out,) = [o.name for o in pre.graph.output]
    (net_in,) = [i.name for i in net.graph.input]
    (net_out,) = [o.name for o in net.graph.output]
    merged = onnx.compose.merge_models(
        pre,
        net,
        io_map=[(pre_out, net_in)],
        prefix2="net/",
        producer_name="propensity-service",
        producer_version="1",
        name="propensity",
    )
    # Rename the network's output to a stable, documented name, and expose the preprocessed
    # features too (the service encodes a catalogue once with them).
    old = f"net/{net_out}"
    merged.graph.node.append(helper.make_node("Identity", [old], [OUTPUT_NAME], name="output"))
    merged.graph.node.append(
        helper.make_node("Identity", [pre_out], [ENCODED_OUTPUT], name="encoded_output")
    )
    out = merged.graph.output[0]
    out.name = OUTPUT_NAME
    width = pre.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    merged.graph.output.append(
        helper.make_tensor_value_info(ENCODED_OUTPUT, TensorProto.FLOAT, [None, width])
    )
    # tf2onnx names the traced function with a per-process counter; a fixed text keeps the
    # bytes identical between runs.
    merged.graph.doc_string = "raw columns -> scikit-learn preprocessing -> Keras network"
    onnx.checker.check_model(merged, full_check=True)
    return merged


def pack_inputs(model: onnx.ModelProto, features: list[Feature]) -> onnx.ModelProto:
    """Replace the one-input-per-column interface with the packed one of app.card: a Split per
    packed input gives each column back its old name, so the rest of the graph is unchanged."""
    model = copy.deepcopy(model)
    numbers, categories = packed_columns(features)
    inputs, nodes = [], []
    for name, columns, dtype in (
        (NUMBERS_INPUT, numbers, TensorProto.FLOAT),
        (CATEGORIES_INPUT, categories, TensorProto.STRING),
    ):
        if not columns:
            continue
        inputs.append(helper.make_tensor_value_info(name, dtype, [None, len(columns)]))
        if len(columns) == 1:
            nodes.append(helper.make_node("Identity", [name], columns, name=f"unpack_{name}"))
        else:
            nodes.append(helper.make_node("Split", [name], columns, axis=1, name=f"unpack_{name}"))
        model.metadata_props.append(
            onnx.StringStringEntryProto(key=f"columns.{name}", value=",".join(columns))
        )
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    old_nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes + old_nodes)
    onnx.checker.check_model(model, full_check=True)
    return model


@dataclass(frozen=True)
class Exported:
    """The one self-contained graph, and the network alone with what its inputs are."""

    model: bytes  # packed raw columns -> probability (and the encoded features)
    network: bytes  # encoded features -> probability
    sources: list[str]  # the raw feature behind each encoded column


def network_alone(net: onnx.ModelProto, ir_version: int) -> onnx.ModelProto:
    """The converted network with its input named `encoded` and its output `probability`."""
    net = copy.deepcopy(net)
    (old_in,) = net.graph.input
    (old_out,) = net.graph.output
    width = old_in.type.tensor_type.shape.dim[1].dim_value
    net.graph.node.insert(0, helper.make_node("Identity", [ENCODED_OUTPUT], [old_in.name]))
    net.graph.node.append(helper.make_node("Identity", [old_out.name], [OUTPUT_NAME]))
    del net.graph.input[:]
    net.graph.input.append(
        helper.make_tensor_value_info(ENCODED_OUTPUT, TensorProto.FLOAT, [None, width])
    )
    del net.graph.output[:]
    net.graph.output.append(
        helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None, 1])
    )
    net.graph.doc_string = "encoded features -> Keras network"
    versions = {o.domain: o.version for o in net.opset_import}
    versions[""] = OPSET
    del net.opset_import[:]
    net.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))
    net.ir_version = ir_version
    onnx.checker.check_model(net, full_check=True)
    return net


def encoded_sources(preprocessor: Any) -> list[str]:
    """The raw feature behind each column the fitted ColumnTransformer outputs."""
    from sklearn.preprocessing import OneHotEncoder

    sources: list[str] = [""] * preprocessor.output_indices_["remainder"].start
    for name, pipeline, columns in preprocessor.transformers_:
        if name == "remainder":
            continue
        span = preprocessor.output_indices_[name]
        last = pipeline.steps[-1][1]
        if isinstance(last, OneHotEncoder):
            names = [c for c, cats in zip(columns, last.categories_, strict=True) for _ in cats]
        else:
            names = list(columns)
        if len(names) != span.stop - span.start:
            raise TrainingError(f"cannot trace the output columns of {name!r}")
        sources[span] = names
    if not all(sources):
        raise TrainingError("cannot trace every output column of the preprocessor")
    return sources


def export_onnx(preprocessor: Any, network: Any, features: list[Feature]) -> Exported:
    """Convert both halves, merge them, pack the inputs and compact the one-hot block; also
    the network alone."""
    pre = convert_preprocessor(preprocessor, features)
    (pre_out,) = pre.graph.output
    n_inputs = pre_out.type.tensor_type.shape.dim[1].dim_value
    net = convert_network(network, n_inputs)
    model = compact_one_hot(pack_inputs(merge(pre, net), features))
    return Exported(
        model=model.SerializeToString(),
        network=network_alone(net, model.ir_version).SerializeToString(),
        sources=encoded_sources(preprocessor),
    )


def onnx_feeds(frame: pd.DataFrame, features: list[Feature]) -> dict[str, np.ndarray]:
    """The canonical frame as the graph's packed inputs (see app.card.packed_columns)."""
    numbers, categories = packed_columns(features)
    feeds = {}
    if numbers:
        feeds[NUMBERS_INPUT] = np.ascontiguousarray(frame[numbers].to_numpy(dtype=np.float32))
    if categories:
        feeds[CATEGORIES_INPUT] = np.ascontiguousarray(frame[categories].to_numpy(dtype=object))
    return feeds


def probe_rows(frame: pd.DataFrame, features: list[Feature], n: int = 20) -> pd.DataFrame:
    """Rows the test set may lack: each feature missing in turn, unseen categories, all missing."""
    base = frame.head(n).reset_index(drop=True)
    variants = []
    for f in features:
        missing = base.copy()
        missing[f.name] = MISSING_CATEGORY if f.kind is FeatureKind.CATEGORICAL else np.nan
        variants.append(missing)
        if f.kind is FeatureKind.CATEGORICAL:
            unseen = base.copy()
            unseen[f.name] = UNSEEN_CATEGORY
            variants.append(unseen)
    empty = base.head(1).copy()
    for f in features:
        empty[f.name] = MISSING_CATEGORY if f.kind is FeatureKind.CATEGORICAL else np.nan
    variants.append(empty)
    return pd.concat(variants, ignore_index=True)


def check_parity(
    exported: Exported,
    frame: pd.DataFrame,
    features: list[Feature],
    python_predict: Callable[[pd.DataFrame], np.ndarray],
    tolerance: float,
) -> float:
    """Max |ONNX Runtime - Python pipeline| over the frame, for the whole graph and for the
    network alone on the graph's encoded features; raises if either is above the tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(exported.model, providers=["CPUExecutionProvider"])
    got, encoded = session.run([OUTPUT_NAME, ENCODED_OUTPUT], onnx_feeds(frame, features))
    got = got.reshape(-1)
    expected = python_predict(frame)
    diff = np.abs(got.astype(np.float64) - expected)
    worst = float(np.nanmax(diff)) if len(diff) else 0.0
    if not np.isfinite(got).all() or worst > tolerance:
        row = int(np.nanargmax(diff)) if np.isfinite(diff).any() else 0
        raise TrainingError(
            f"export refused: ONNX Runtime differs from the Python pipeline by {worst:.3g} "
            f"(> {tolerance:g}) at row {row}; no bundle written"
        )
    network = ort.InferenceSession(exported.network, providers=["CPUExecutionProvider"])
    alone = network.run([OUTPUT_NAME], {ENCODED_OUTPUT: encoded})[0].reshape(-1)
    split = float(np.abs(alone - got).max()) if len(got) else 0.0
    if split > tolerance:
        raise TrainingError(
            f"export refused: the network alone differs from the whole graph by {split:.3g}"
        )
    log.info("parity: max |onnx - python| = %.2e over %d rows", worst, len(frame))
    return worst
