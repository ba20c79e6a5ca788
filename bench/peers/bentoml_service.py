"""BentoML's recommended way: a @bentoml.service class that opens the ONNX session once.

Rows arrive as JSON objects, as with the service, and are packed into the graph's two inputs
(the column order is in the model's metadata).
"""

import os
from typing import Any

import bentoml
import numpy as np
import onnxruntime as ort

MODEL = os.environ["BENCH_ONNX_MODEL"]


@bentoml.service(workers=1)
class Propensity:
    def __init__(self) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(MODEL, options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.numbers = meta["columns.numbers"].split(",")
        self.categories = meta["columns.categories"].split(",")

    @bentoml.api
    def predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        feeds = {
            "numbers": np.array([[r.get(c) for c in self.numbers] for r in rows], np.float32),
            "categories": np.array(
                [[str(r.get(c)) for c in self.categories] for r in rows], dtype=object
            ),
        }
        (out,) = self.session.run(["probability"], feeds)
        return {"probabilities": out.reshape(-1).tolist()}
