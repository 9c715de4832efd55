"""Builds the SavedModels of the TF Serving tests, with TensorFlow only, and what their signatures answer.

Run as a script in a fresh interpreter (the test process keeps TensorFlow out of itself: TensorFlow
and torch's triton in one process can crash it). Writes into the folder given as the only argument:

- ``half/``: ``serving_default`` takes ``x`` float32 ``[-1]`` and answers ``y = x / 2 + 3`` (TF
  Serving's own ``half_plus_three`` example).
- ``multi/``: ``serving_default`` takes ``x`` float32 ``[-1, 3]`` and ``tag`` string ``[-1]``, and
  answers ``scaled`` (``2x + 1``), ``total`` (the sum of ``x``), ``tag_len`` (the byte length of
  ``tag``) and ``tag_bytes`` (``tag`` with ``"!"`` appended); a second signature ``double`` is not served.
- ``estimator/``: a TF1-style graph with three signatures over serialized ``tf.Example``s with a
  float feature ``x`` of 2 values: ``serving_default`` (predict: ``score`` = x0 + 2 x1),
  ``classify`` (classes ``neg`` / ``pos`` with softmax scores of ``[-s, s]``) and ``regress``
  (``outputs`` = s).
- ``refs.json``: the signatures called directly on the inputs the tests send.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HALF_X = [1.0, 2.0, 5.0]
MULTI_X = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]]
MULTI_TAG = [b"ab\x00\xff", b"hi"]  # binary: a zero byte and a byte that is not UTF-8
EXAMPLES = [[1.0, 2.0], [-3.0, 0.5]]


def _half(tf, out: Path) -> list[float]:
    class Half(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x / 2.0 + 3.0}

    module = Half()
    tf.saved_model.save(module, str(out / "half"), signatures={"serving_default": module.serve})
    served = tf.saved_model.load(str(out / "half")).signatures["serving_default"]
    return served(x=tf.constant(HALF_X))["y"].numpy().tolist()


def _multi(tf, out: Path) -> dict[str, list]:
    class Multi(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 3], tf.float32, name="x"),
                tf.TensorSpec([None], tf.string, name="tag"),
            ]
        )
        def serve(self, x, tag):
            return {
                "scaled": 2.0 * x + 1.0,
                "total": tf.reduce_sum(x, axis=1),
                "tag_len": tf.strings.length(tag),
                "tag_bytes": tf.strings.join([tag, tf.fill(tf.shape(tag), "!")]),
            }

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def double(self, x):
            return {"doubled": 2.0 * x}

    module = Multi()
    signatures = {"serving_default": module.serve, "double": module.double}
    tf.saved_model.save(module, str(out / "multi"), signatures=signatures)
    served = tf.saved_model.load(str(out / "multi")).signatures["serving_default"]
    answer = served(x=tf.constant(MULTI_X), tag=tf.constant(MULTI_TAG))
    return {
        "scaled": answer["scaled"].numpy().tolist(),
        "total": answer["total"].numpy().tolist(),
        "tag_len": answer["tag_len"].numpy().tolist(),
        "tag_bytes": [v.hex() for v in answer["tag_bytes"].numpy().tolist()],
    }


def _estimator(tf, out: Path) -> dict[str, list]:
    v1 = tf.compat.v1
    folder = out / "estimator"
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as session:
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        features = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([2], tf.float32)})
        score = features["x"][:, 0] + 2.0 * features["x"][:, 1]
        probabilities = tf.nn.softmax(tf.stack([-score, score], axis=1))
        classes = tf.tile(tf.constant([["neg", "pos"]]), [tf.shape(score)[0], 1])
        builder = v1.saved_model.Builder(str(folder))
        builder.add_meta_graph_and_variables(
            session,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map={
                "serving_default": v1.saved_model.predict_signature_def({"examples": serialized}, {"score": score}),
                "classify": v1.saved_model.classification_signature_def(serialized, classes, probabilities),
                "regress": v1.saved_model.regression_signature_def(serialized, score),
            },
        )
        builder.save()
    examples = [
        tf.train.Example(
            features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=x))})
        ).SerializeToString()
        for x in EXAMPLES
    ]
    loaded = tf.saved_model.load(str(folder))
    batch = tf.constant(examples)
    predicted = loaded.signatures["serving_default"](examples=batch)
    classified = loaded.signatures["classify"](inputs=batch)
    regressed = loaded.signatures["regress"](inputs=batch)
    return {
        "score": predicted["score"].numpy().tolist(),
        "classes": [[c.decode() for c in row] for row in classified["classes"].numpy().tolist()],
        "scores": classified["scores"].numpy().tolist(),
        "regress": regressed["outputs"].numpy().tolist(),
    }


def main(out: Path) -> None:
    import tensorflow as tf

    refs = {"half": _half(tf, out), "multi": _multi(tf, out), "estimator": _estimator(tf, out)}
    (out / "refs.json").write_text(json.dumps(refs), encoding="utf-8")
    np.testing.assert_allclose(refs["half"], [3.5, 4.0, 5.5])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
