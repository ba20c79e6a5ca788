"""Offline training: data -> features -> Keras MLP -> evaluation -> one ONNX graph + model card."""

import os

# See app/__init__.py: no onnxruntime telemetry from the parity check either.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
