"""The Keras network: a small MLP with a sigmoid output, built with the functional API."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from training.config import TrainConfig

log = logging.getLogger(__name__)

INPUT_NAME = "features"


def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy and TensorFlow, and deterministic ops: same data, same bytes."""
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_network(n_inputs: int, config: TrainConfig) -> Any:
    """Dense layers with ReLU (and dropout if asked) down to one sigmoid unit; compiled."""
    import keras

    inputs = keras.Input(shape=(n_inputs,), name=INPUT_NAME, dtype="float32")
    x = inputs
    for i, units in enumerate(config.layers, start=1):
        x = keras.layers.Dense(
            units,
            activation="relu",
            kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 > 0 else None,
            name=f"dense_{i}",
        )(x)
        if config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    output = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    model = keras.Model(inputs, output, name="propensity_mlp")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    return model


def class_weights(y: np.ndarray, config: TrainConfig) -> dict[int, float] | None:
    """The weight of each class in the loss, as the config asks."""
    if config.class_weight == "none":
        return None
    if config.class_weight == "balanced":
        counts = np.bincount(y.astype(int), minlength=2)
        return {c: float(len(y) / (2 * counts[c])) for c in (0, 1)}
    return {int(k): float(v) for k, v in config.class_weight.items()}


def _progress_callback(epochs: int) -> Any:
    """A Keras callback that logs one line per epoch instead of drawing a progress bar."""
    import keras

    class ProgressLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            shown = "  ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
            log.info("epoch %d/%d  %s", epoch + 1, epochs, shown)

    return ProgressLog()


def fit_network(
    model: Any,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig,
) -> dict[str, list[float]]:
    """Fit in place on float32 arrays; returns the Keras history."""
    import keras

    callbacks: list[Any] = [_progress_callback(config.epochs)]
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_auc", mode="max", patience=config.patience, restore_best_weights=True
            )
        )
    history = model.fit(
        X_train.astype(np.float32),
        y_train.astype(np.float32),
        validation_data=(X_val.astype(np.float32), y_val.astype(np.float32)),
        epochs=config.epochs,
        batch_size=config.batch_size,
        class_weight=class_weights(y_train, config),
        callbacks=callbacks,
        shuffle=True,
        verbose=0,
    )
    return {k: [float(x) for x in v] for k, v in history.history.items()}


def predict_network(model: Any, X: np.ndarray) -> np.ndarray:
    """Probabilities as a flat float64 array."""
    out = model.predict(X.astype(np.float32), batch_size=4096, verbose=0)
    return np.asarray(out, dtype=np.float64).reshape(-1)
