"""The categorical columns' one-hot encoding, rewritten as lookups over the packed input.

skl2onnx encodes each categorical column on its own: the packed [N, C] string input is split
into C columns, each goes through an ai.onnx.ml OneHotEncoder, and the results are concatenated
and reshaped into the [N, W] block the network reads. That is C + 3 nodes and C string copies,
which cost more than the network itself for one row.

`compact_one_hot` writes the block in place instead: one LabelEncoder maps every known category
of every column to its index in one vocabulary, an Add and two Gathers turn (column, vocabulary
index) into the category's position in the [N, W] block and the value to write there (1, or 0
for a category the column does not know), and one ScatterElements writes them into zeros. That
is eight nodes whatever C is, and no string is copied.

The output is the same to the bit: ones and zeros, each column's one at its own position, an
unknown or missing category all zeros, as OneHotEncoder's `zeros=1` gives. Measured on the UCI
model (C = 6) against the encoders: 12.9 -> 11.1 µs for one row, 55 -> 45 µs for 100 and
376 -> 318 µs for 1,000 (summing one-hot rows gathered from an identity matrix instead was
faster for one row but slower from 100 on).

The rewrite applies only to exactly the pattern described, in a model of opsets that have these
operators (ai.onnx.ml 2 and ONNX 15 or later; export writes 3 and 17), and only for three columns
or more (with two it was no faster for one row and slower for 100); anything else is left as it
is. Export checks parity afterwards either way.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from app.card import CATEGORIES_INPUT

ML_DOMAIN = "ai.onnx.ml"


@dataclass(frozen=True)
class _Pattern:
    """What a match found: the nodes to remove, each column's categories in input order,
    the concatenation order of the columns, and the tensor the block must be written to."""

    removed: list[onnx.NodeProto]
    categories: list[list[str]]  # per column of the packed input
    order: list[int]  # the columns in the order their encodings are concatenated
    output: str


def _attribute(node: onnx.NodeProto, name: str) -> onnx.AttributeProto | None:
    return next((a for a in node.attribute if a.name == name), None)


def _constant(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    found = next((i for i in model.graph.initializer if i.name == name), None)
    return None if found is None else numpy_helper.to_array(found)


def _free_prefix(graph: onnx.GraphProto, base: str) -> str:
    """`base`, or `base_2`, `base_3`...: a prefix no name in the graph starts with."""
    names = {i.name for i in graph.initializer} | {i.name for i in graph.input}
    names |= {o.name for o in graph.output} | {v.name for v in graph.value_info}
    for node in graph.node:
        names |= {node.name, *node.input, *node.output}
    prefix, n = base, 1
    while any(name.startswith(f"{prefix}_") for name in names):
        n += 1
        prefix = f"{base}_{n}"
    return prefix


def _match(model: onnx.ModelProto) -> _Pattern | None:
    """The split-encode-concatenate pattern over the categories input, or None."""
    versions = {o.domain: o.version for o in model.opset_import}
    # LabelEncoder with keys_strings is ai.onnx.ml 2; Shape with start and end, ONNX 15.
    if versions.get(ML_DOMAIN, 0) < 2 or versions.get("", versions.get("ai.onnx", 0)) < 15:
        return None
    graph = model.graph
    if any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for n in graph.node
        for a in n.attribute
    ):
        return None  # names used inside subgraphs are not followed here
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    outputs = {o.name for o in graph.output}

    def only_consumer(tensor: str, op: str) -> onnx.NodeProto | None:
        found = consumers.get(tensor, [])
        if len(found) != 1 or found[0].op_type != op or tensor in outputs:
            return None
        return found[0]

    unpack = only_consumer(CATEGORIES_INPUT, "Split")
    if unpack is None or len(unpack.output) < 3:  # measured: two columns gain nothing
        return None
    axis = _attribute(unpack, "axis")
    if axis is None or axis.i != 1 or len(unpack.input) != 1:
        return None
    # One column per output: the input is declared [N, C] for C outputs.
    declared = next((i for i in graph.input if i.name == CATEGORIES_INPUT), None)
    dims = declared.type.tensor_type.shape.dim if declared is not None else []
    if len(dims) != 2 or dims[1].dim_value != len(unpack.output):
        return None
    removed, categories, encoded = [unpack], [], []
    for column in unpack.output:
        tensor = column
        select = consumers.get(tensor, [])
        # skl2onnx may pick the column out of its own [N, 1] tensor first: Gather index 0.
        if len(select) == 1 and select[0].op_type == "Gather":
            gather = select[0]
            index = _constant(model, gather.input[1])
            gather_axis = _attribute(gather, "axis")
            if gather_axis is None or gather_axis.i != 1 or index is None or index.tolist() != [0]:
                return None
            if gather.input[0] != tensor or tensor in outputs:
                return None
            removed.append(gather)
            tensor = gather.output[0]
        encoder = only_consumer(tensor, "OneHotEncoder")
        if encoder is None or encoder.domain != ML_DOMAIN:
            return None
        zeros, cats = _attribute(encoder, "zeros"), _attribute(encoder, "cats_strings")
        if zeros is None or zeros.i != 1 or cats is None or not cats.strings:
            return None
        try:
            categories.append([c.decode() for c in cats.strings])
        except UnicodeDecodeError:
            return None
        removed.append(encoder)
        encoded.append(encoder.output[0])
    concat = only_consumer(encoded[0], "Concat")
    if concat is None or sorted(concat.input) != sorted(encoded):
        return None
    if any(len(consumers[e]) != 1 or e in outputs for e in encoded):
        return None
    concat_axis = _attribute(concat, "axis")
    if concat_axis is None or concat_axis.i not in (-1, 2):
        return None
    reshape = only_consumer(concat.output[0], "Reshape")
    width = sum(map(len, categories))
    shape = _constant(model, reshape.input[1]) if reshape is not None else None
    if reshape is None or shape is None or shape.tolist() != [-1, width]:
        return None
    order = [encoded.index(name) for name in concat.input]
    return _Pattern([*removed, concat, reshape], categories, order, reshape.output[0])


def compact_one_hot(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model with its categorical one-hot block as lookups (see the module's
    docstring), or an unchanged copy where the block is not exactly what skl2onnx writes."""
    model = copy.deepcopy(model)
    pattern = _match(model)
    if pattern is None:
        return model
    cats = pattern.categories
    vocabulary = sorted({c for column in cats for c in column})
    where = {c: i for i, c in enumerate(vocabulary)}
    known = len(vocabulary)
    width = sum(map(len, cats))
    offsets = np.cumsum([0] + [len(cats[i]) for i in pattern.order])
    # For (column, vocabulary index): the position in the block and the value written there.
    # A category the column does not know (or none at all) writes 0 at the column's first
    # position, which is 0 already: no two columns share a position, so no write overlaps.
    positions = np.zeros((len(cats), known + 1), dtype=np.int64)
    values = np.zeros((len(cats), known + 1), dtype=np.float32)
    for k, column in enumerate(pattern.order):
        positions[column, :] = offsets[k]
        for i, value in enumerate(cats[column]):
            positions[column, where[value]] = offsets[k] + i
            values[column, where[value]] = 1.0
    prefix = _free_prefix(model.graph, "onehot")

    def name(key: str) -> str:
        return f"{prefix}_{key}"

    initializers = [
        numpy_helper.from_array(np.arange(len(cats), dtype=np.int64) * (known + 1), name("base")),
        numpy_helper.from_array(positions.reshape(-1), name("positions")),
        numpy_helper.from_array(values.reshape(-1), name("values")),
        numpy_helper.from_array(np.array([width], dtype=np.int64), name("width")),
    ]
    nodes = [
        helper.make_node(
            "LabelEncoder",
            [CATEGORIES_INPUT],
            [name("ids")],
            domain=ML_DOMAIN,
            keys_strings=vocabulary,
            values_int64s=list(range(known)),
            default_int64=known,
            name=name("vocabulary"),
        ),
        helper.make_node(
            "Add", [name("ids"), name("base")], [name("flat")], name=name("by_column")
        ),
        helper.make_node(
            "Gather",
            [name("positions"), name("flat")],
            [name("where")],
            axis=0,
            name=name("where"),
        ),
        helper.make_node(
            "Gather", [name("values"), name("flat")], [name("ones")], axis=0, name=name("ones")
        ),
        helper.make_node(
            "Shape", [CATEGORIES_INPUT], [name("rows")], start=0, end=1, name=name("rows")
        ),
        helper.make_node(
            "Concat", [name("rows"), name("width")], [name("shape")], axis=0, name=name("shape")
        ),
        helper.make_node(
            "ConstantOfShape",
            [name("shape")],
            [name("zeros")],
            value=helper.make_tensor("zero", onnx.TensorProto.FLOAT, [1], [0.0]),
            name=name("zeros"),
        ),
        helper.make_node(
            "ScatterElements",
            [name("zeros"), name("where"), name("ones")],
            [pattern.output],
            axis=1,
            name=name("block"),
        ),
    ]
    graph = model.graph
    gone = {id(n) for n in pattern.removed}
    kept = [n for n in graph.node if id(n) not in gone]
    del graph.node[:]
    graph.node.extend(nodes + kept)  # the new nodes read only the input and initializers
    # Drop what only the removed nodes used (the Reshape's shape) or made; nothing else.
    used = {i for node in graph.node for i in node.input}
    read = {i for node in pattern.removed for i in node.input} - used
    made = {o for node in pattern.removed for o in node.output} - {pattern.output}
    alive = [i for i in graph.initializer if i.name not in read]
    del graph.initializer[:]
    graph.initializer.extend(alive + initializers)
    info = [v for v in graph.value_info if v.name not in made]
    del graph.value_info[:]
    graph.value_info.extend(info)
    onnx.checker.check_model(model, full_check=True)
    return model
