"""Builds a small Keras image classifier on the TensorFlow backend and exports it as a SavedModel.

Run as a script in a fresh interpreter (``KERAS_BACKEND=tensorflow``; Keras picks its backend once
per process). Arguments: the output folder, and an ``.npy`` of preprocessed images (N, 16, 16, 3).
Writes ``classifier_sm/`` (``model.export``) and ``expected.npy``: the SavedModel's
``serving_default`` signature called directly on those images.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(out: Path, pixels: Path) -> None:
    import keras
    import tensorflow as tf

    assert keras.backend.backend() == "tensorflow"
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(16, 16, 3), name="image"),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, name="logits"),  # logits: modeldeck applies the softmax
        ]
    )
    model.export(out / "classifier_sm", verbose=False)
    signature = tf.saved_model.load(str(out / "classifier_sm")).signatures["serving_default"]
    (served,) = signature(image=tf.constant(np.load(pixels))).values()
    np.save(out / "expected.npy", served.numpy())


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
