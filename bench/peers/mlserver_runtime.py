"""MLServer's recommended way to serve a model it has no runtime for: a custom MLModel.

The ONNX session is opened once in load(); predict() decodes the V2 request's two tensors (the
graph's packed inputs, "numbers" FP32 [N, k] and "categories" BYTES [N, m]) with MLServer's codecs.
"""

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxPropensity(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        uri = self.settings.parameters.uri
        self.session = ort.InferenceSession(uri, options, providers=["CPUExecutionProvider"])
        self.widths = {i.name: i.shape[1] for i in self.session.get_inputs()}
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {}
        for item in payload.inputs:
            if item.datatype == "BYTES":
                values = StringCodec.decode_input(item)
                feeds[item.name] = np.array(values, dtype=object).reshape(
                    -1, self.widths[item.name]
                )
            else:
                feeds[item.name] = NumpyCodec.decode_input(item).astype(np.float32)
        (out,) = self.session.run(["probability"], feeds)
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("probability", out)]
        )
