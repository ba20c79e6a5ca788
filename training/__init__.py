"""Offline training: data -> features -> Keras MLP -> evaluation -> one ONNX graph + model card."""
