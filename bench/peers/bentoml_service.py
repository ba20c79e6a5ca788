"""BentoML's recommended way: a @bentoml.service class that opens the ONNX session once."""

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
        self.inputs = [(i.name, i.type == "tensor(string)") for i in self.session.get_inputs()]

    @bentoml.api
    def predict(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        feeds = {
            name: np.array(
                [r.get(name) for r in rows], dtype=object if text else np.float32
            ).reshape(-1, 1)
            for name, text in self.inputs
        }
        (out,) = self.session.run(["probability"], feeds)
        return {"probabilities": out.reshape(-1).tolist()}
