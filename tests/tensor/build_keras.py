"""Builds the Keras test models on the TensorFlow backend: ``.keras`` files, SavedModel exports, references.

Run as a script in a fresh interpreter (``KERAS_BACKEND=tensorflow``): Keras picks its backend
once per process, the test process runs Keras on torch, and ``model.export`` to a SavedModel
needs TensorFlow. Writes into the folder given as the only argument:

- ``mlp.keras`` (functional: ``features`` (4,) -> ``probability`` (1,)), ``cnn.keras``
  (Sequential: ``image`` (8, 8, 1) -> ``scores`` (3,)), ``text.keras`` (``text`` string ->
  TextVectorization -> ``logits`` (2,)) and ``lambda.keras`` (a ``Lambda`` layer named ``doubler``);
- ``mlp_sm/``, ``cnn_sm/``, ``text_sm/``: ``model.export`` of the first three;
- ``refs.npz``: the inputs, ``model.predict`` on them and the SavedModel signature called directly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TEXTS = np.array(["hello world", "the cat sat on the mat", "a dog", "words never seen", "cat"], dtype=object)


def main(out: Path) -> None:
    import keras
    import tensorflow as tf

    assert keras.backend.backend() == "tensorflow"
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_mlp = rng.normal(size=(5, 4)).astype(np.float32)
    x_cnn = rng.random((3, 8, 8, 1)).astype(np.float32)

    features = keras.Input(shape=(4,), name="features")
    hidden = keras.layers.Dense(8, activation="relu")(features)
    mlp = keras.Model(features, keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden))

    cnn = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1), name="image"),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax", name="scores"),
        ]
    )

    vectorize = keras.layers.TextVectorization(max_tokens=20, output_mode="int", output_sequence_length=6)
    vectorize.adapt(["hello world", "the cat sat on the mat", "a dog barks", "hello cat"])
    text = keras.Input(shape=(), dtype="string", name="text")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(21, 4)(vectorize(text)))
    text_model = keras.Model(text, keras.layers.Dense(2, name="logits")(pooled))

    x = keras.Input(shape=(4,), name="x")
    doubled = keras.layers.Lambda(lambda t: t * 2, name="doubler")(x)
    lambda_model = keras.Model(x, keras.layers.Dense(1)(doubled))

    refs: dict[str, np.ndarray] = {"x_mlp": x_mlp, "x_cnn": x_cnn, "texts": TEXTS.astype(str)}
    for name, model, inputs, key in (
        ("mlp", mlp, x_mlp, "features"),
        ("cnn", cnn, x_cnn, "image"),
        ("text", text_model, TEXTS, "text"),
    ):
        model.save(out / f"{name}.keras")
        refs[f"{name}_predict"] = model.predict(inputs, verbose=0)
        model.export(out / f"{name}_sm", verbose=False)
        signature = tf.saved_model.load(str(out / f"{name}_sm")).signatures["serving_default"]
        (served,) = signature(**{key: tf.constant(inputs)}).values()
        refs[f"{name}_signature"] = served.numpy()
    lambda_model.save(out / "lambda.keras")
    np.savez(out / "refs.npz", **refs)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
