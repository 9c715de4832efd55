"""Face benchmarks, each measured side by side in one run.

    python benchmarks/faces.py embed [--rounds 5] [--images 48] [--batch 16]
        dlib ResNet embedding throughput on the same faces, two ways:
        - descriptors: modeldeck's batched call (DlibRuntime.descriptors: one
          compute_face_descriptor over a batch of images and their 5-point shapes) vs calling
          dlib's compute_face_descriptor(image, shape) face by face in a loop;
        - end to end: the face-embed task (decode, HOG detection, landmarks, batched
          descriptors, typed results) vs the same dlib calls (detector, shape predictor,
          compute_face_descriptor) in a plain loop over the same arrays.
        Rounds alternate between the two sides, so drift in the machine's load hits both alike;
        each figure is the median round. Target: modeldeck >= 0.9x the direct loop.

    python benchmarks/faces.py gallery [--vectors 100000] [--per-person 5] [--queries 50] [--rounds 3]
        Identification over a gallery of random 128-D vectors (20,000 people x 5 by default):
        Gallery.search (generation check in SQLite, one matrix-vector product, best distance per
        person, top-k, exact distances of the winners) vs one bare NumPy ``matrix @ q`` over the
        very array the gallery searches. Rounds alternate; each figure is the median round.
        Limit: the gallery within 2x of the bare product. Bulk insert and the first search (which
        loads the matrix from SQLite) are reported apart.

Results are printed with their ratios and written to .bench/faces-<what>.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import save

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/faces/face_builders.py makes the photos


def _photos(n: int) -> list[Any]:
    """``n`` one-face photos: the astronaut and the lfw_subset faces (upscaled to 150x150) that HOG finds."""
    import dlib
    import numpy as np
    from tests.faces.face_builders import astronaut, lfw_faces

    photos = [astronaut(), *lfw_faces()]
    out = []

    detector = dlib.get_frontal_face_detector()
    for p in photos:
        if len(detector(p, 0)) == 1:
            out.append(np.ascontiguousarray(p))
        if len(out) == n:
            break
    return out


def _alternate(sides: dict[str, Callable[[], int]], rounds: int) -> dict[str, list[float]]:
    """Run each side once per round, in turn; items per second of every run."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for fn in sides.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, fn in sides.items():
            started = time.perf_counter()
            items = fn()
            rates[name].append(items / (time.perf_counter() - started))
    return rates


def embed(args: argparse.Namespace) -> dict[str, Any]:
    import dlib
    import numpy as np

    import modeldeck
    from modeldeck.runtimes.dlib import PREDICTOR_FILES, RECOGNITION_FILE, face_models_dir

    photos = _photos(args.images)
    folder = face_models_dir()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(folder / PREDICTOR_FILES[5]))
    recognizer = dlib.face_recognition_model_v1(str(folder / RECOGNITION_FILE))
    shapes = [predictor(p, detector(p, 0)[0]) for p in photos]

    task = modeldeck.load("face-embed", batch_size=args.batch)
    runtime = task.dlib

    def direct_descriptors() -> int:
        for p, s in zip(photos, shapes, strict=True):
            np.asarray(recognizer.compute_face_descriptor(p, s))
        return len(photos)

    def batched_descriptors() -> int:
        for start in range(0, len(photos), args.batch):
            runtime.descriptors(photos[start : start + args.batch], [[s] for s in shapes[start : start + args.batch]])
        return len(photos)

    def direct_end_to_end() -> int:
        for p in photos:
            for rect in detector(p, 0):
                np.asarray(recognizer.compute_face_descriptor(p, predictor(p, rect)))
        return len(photos)

    def task_end_to_end() -> int:
        task(photos)  # the task batches by its batch_size
        return len(photos)

    # The two paths must compute the same numbers before their speed means anything.
    ours = runtime.descriptors(photos[:4], [[s] for s in shapes[:4]])
    for p, s, v in zip(photos[:4], shapes[:4], ours, strict=True):
        assert np.allclose(np.asarray(recognizer.compute_face_descriptor(p, s)), v[0], atol=1e-5)

    print(f"dlib ResNet embeddings, {len(photos)} one-face photos, batch {args.batch}, {args.rounds} rounds")
    report: dict[str, Any] = {"images": len(photos), "batch": args.batch, "rounds": args.rounds}
    for label, baseline, candidate in (
        ("descriptors", direct_descriptors, batched_descriptors),
        ("end to end", direct_end_to_end, task_end_to_end),
    ):
        rates = _alternate({"dlib loop": baseline, "modeldeck": candidate}, args.rounds)
        base, ours_rate = statistics.median(rates["dlib loop"]), statistics.median(rates["modeldeck"])
        print(f"  {label:<12} dlib loop {base:7.1f} faces/s   modeldeck {ours_rate:7.1f} faces/s   "
              f"ratio {ours_rate / base:5.2f}x")  # fmt: skip
        report[label.replace(" ", "_")] = {
            "dlib_loop_faces_per_s": base,
            "modeldeck_faces_per_s": ours_rate,
            "ratio": ours_rate / base,
            "rounds": rates,
        }
    path = save("faces-embed", report)
    print(f"written to {path}")
    return report


# ---------------------------------------------------------------- gallery identification (F2)


class _VectorsOnly:
    """Stands in for a face-embed task: the gallery benchmark stores and searches vectors, it embeds nothing."""

    model_id = "bench-vectors@1"
    dim = 128
    metric = "euclidean"
    threshold = 0.6

    def __call__(self, image: Any) -> Any:
        raise NotImplementedError("the gallery benchmark searches vectors only")

    def embed_one(self, image: Any, *, largest: bool = False) -> Any:
        raise NotImplementedError("the gallery benchmark searches vectors only")


def gallery(args: argparse.Namespace) -> dict[str, Any]:
    """``Gallery.search`` (generation check, per-person best, top-k) vs one bare ``matrix @ q`` per query."""
    import tempfile

    import numpy as np

    from modeldeck.gallery import Gallery

    vectors, per_person, queries, rounds, top_k = args.vectors, args.per_person, args.queries, args.rounds, args.top_k
    rng = np.random.default_rng(0)
    people = vectors // per_person
    data = (rng.normal(size=(people * per_person, 128)) * 0.09).astype(np.float32)
    probes = (rng.normal(size=(queries, 128)) * 0.09).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        gal = Gallery(Path(tmp) / "bench.db", _VectorsOnly())
        started = time.perf_counter()
        for p in range(people):
            gal.add_vectors(f"person{p:06d}", data[p * per_person : (p + 1) * per_person])
        enroll_s = time.perf_counter() - started
        started = time.perf_counter()
        gal.search(probes[0], top_k=top_k)  # loads the matrix from SQLite
        load_s = time.perf_counter() - started
        matrix = gal._current().matrix  # the very array the gallery searches
        assert matrix.shape == (people * per_person, 128)

        def best_of_gallery() -> float:
            started = time.perf_counter()
            for q in probes:
                gal.search(q, top_k=top_k)
            return (time.perf_counter() - started) / queries

        def best_of_bare() -> float:
            started = time.perf_counter()
            for q in probes:
                matrix @ q
            return (time.perf_counter() - started) / queries

        gallery_times, bare_times = [], []
        for _ in range(rounds):  # alternate, so load from other processes hits both alike
            bare_times.append(best_of_bare())
            gallery_times.append(best_of_gallery())
        # the answers are right: brute force per-person minimum over the same vectors
        q = probes[1]
        best = np.linalg.norm(data - q, axis=1).reshape(people, per_person).min(axis=1)
        expected = [f"person{i:06d}" for i in np.argsort(best, kind="stable")[:top_k]]
        assert [c.name for c in gal.search(q, top_k=top_k)] == expected
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 1e6
        gal.close()
    g, b = statistics.median(gallery_times), statistics.median(bare_times)
    result = {
        "vectors": people * per_person,
        "people": people,
        "dim": 128,
        "queries": queries,
        "rounds": rounds,
        "top_k": top_k,
        "enroll_s": enroll_s,
        "load_matrix_s": load_s,
        "db_mb": size_mb,
        "gallery_search_ms": g * 1e3,
        "bare_matvec_ms": b * 1e3,
        "ratio": g / b,
        "limit": 2.0,
        "rounds_ms": {"gallery": [t * 1e3 for t in gallery_times], "bare": [t * 1e3 for t in bare_times]},
    }
    _print_gallery(result)
    print(f"written to {save('faces-gallery', result)}")
    return result


def _print_gallery(result: dict[str, Any]) -> None:
    print(
        f"gallery identification over {result['vectors']:,} vectors ({result['people']:,} people, "
        f"{result['dim']}-D), top-{result['top_k']}, {result['queries']} queries x {result['rounds']} rounds (medians)"
    )
    print(f"  bulk insert             {result['enroll_s']:.1f}s  ({result['db_mb']:.1f} MB SQLite file)")
    print(f"  first search (load)     {result['load_matrix_s'] * 1e3:.0f} ms")
    print(f"  bare matrix @ q         {result['bare_matvec_ms']:.3f} ms/query")
    print(f"  Gallery.search          {result['gallery_search_ms']:.3f} ms/query")
    verdict = "within" if result["ratio"] <= result["limit"] else "OVER"
    print(f"  ratio                   {result['ratio']:.2f}x  ({verdict} the {result['limit']:.0f}x limit)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="what", required=True)
    p = commands.add_parser("embed", help="batched dlib embeddings vs dlib in a loop")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--images", type=int, default=48)
    p.add_argument("--batch", type=int, default=16)
    p.set_defaults(run=embed)
    g = commands.add_parser("gallery", help="Gallery.search over 100,000 vectors vs one bare matrix-vector product")
    g.add_argument("--vectors", type=int, default=100_000)
    g.add_argument("--per-person", type=int, default=5)
    g.add_argument("--queries", type=int, default=50)
    g.add_argument("--rounds", type=int, default=3)
    g.add_argument("--top-k", type=int, default=5)
    g.set_defaults(run=gallery)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
