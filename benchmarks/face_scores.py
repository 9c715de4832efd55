"""HOG detection scores of real faces and of false detections on every face photo the tests use.

    python benchmarks/face_scores.py [--upsample 1]

The figures behind face-detect's threshold default and face-verify's choice of a face by
confidence (``tasks/faces/_embed.py: CONFIDENT_FRACTION``): the astronaut as PNG and as JPEG at
quality 40/75/95, each mirrored, brightness and contrast edits; the 100 ``lfw_subset`` crops
(25x25, upscaled to 150 px); and the two-faces collage of the tests. A detection overlapping the
astronaut's known face box is real, any other on her photos is false; every lfw detection is real.
Prints, per threshold, real and false detections kept, and writes .bench/face-scores.json.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from _common import save
from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.faces.face_builders import ASTRONAUT_FACE, astronaut, iou, jpeg, lfw_faces, two_faces

from modeldeck.runtimes.dlib import DlibRuntime, face_models_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upsample", type=int, default=1)
    args = parser.parse_args()
    runtime = DlibRuntime(face_models_dir())

    def detections(pixels: np.ndarray) -> list[tuple[tuple[float, ...], float]]:
        boxes, scores = runtime.detect(pixels, upsample=args.upsample, threshold=-0.5)
        return [(tuple(float(v) for v in b), float(s)) for b, s in zip(boxes, scores, strict=True)]

    astro = astronaut()
    width = astro.shape[1]
    mirrored_box = (width - ASTRONAUT_FACE[2], ASTRONAUT_FACE[1], width - ASTRONAUT_FACE[0], ASTRONAUT_FACE[3])
    photos = {"png": astro}
    for quality in (40, 75, 95):
        photos[f"jpeg{quality}"] = np.asarray(Image.open(io.BytesIO(jpeg(astro, quality))).convert("RGB"))
    for factor in (0.5, 0.7, 1.3, 1.6):
        photos[f"bright{factor}"] = np.asarray(ImageEnhance.Brightness(Image.fromarray(astro)).enhance(factor))
        photos[f"contrast{factor}"] = np.asarray(ImageEnhance.Contrast(Image.fromarray(astro)).enhance(factor))
    real: list[float] = []
    false: list[float] = []
    ratios: list[float] = []  # a false detection's score over the face's, in the same photo
    for pixels in photos.values():
        for flipped, truth in ((False, ASTRONAUT_FACE), (True, mirrored_box)):
            found = detections(np.ascontiguousarray(pixels[:, ::-1]) if flipped else pixels)
            face = max((s for b, s in found if iou(b, truth) > 0.3), default=None)
            real += [s for b, s in found if iou(b, truth) > 0.3]
            false += [s for b, s in found if iou(b, truth) <= 0.3]
            if face is not None:
                ratios += [s / face for b, s in found if iou(b, truth) <= 0.3 and s > 0]
    pair = sorted((s for _, s in detections(two_faces(astro))), reverse=True)
    real += pair
    lfw_found = 0
    lfw_by_threshold: dict[float, int] = {}
    lfw_scores = [[s for _, s in detections(face)] for face in lfw_faces()]
    for scores in lfw_scores:
        real += scores
        lfw_found += bool(scores)
    thresholds = (0.0, 0.1, 0.2, 0.3, 0.4)
    for t in thresholds:
        lfw_by_threshold[t] = sum(any(s >= t for s in scores) for scores in lfw_scores)
    print(f"HOG upsample={args.upsample}; detections scored from -0.5")
    print(f"false detections: {len(false)}, highest {max(false):.3f}; at most {max(ratios):.2f}x the face's score")
    print(f"two faces side by side: {pair[0]:.3f} and {pair[1]:.3f} ({pair[1] / pair[0]:.2f}x)")
    print(f"lfw crops with a face found: {lfw_found} of 100")
    rows = []
    for t in thresholds:
        kept_real, kept_false = sum(s >= t for s in real), sum(s >= t for s in false)
        rows.append({"threshold": t, "real": kept_real, "false": kept_false, "lfw_crops": lfw_by_threshold[t]})
        print(
            f"threshold {t:.1f}: real {kept_real}/{len(real)}, false {kept_false}/{len(false)}, "
            f"lfw crops with a face {lfw_by_threshold[t]}/100"
        )
    save(
        "face-scores",
        {
            "upsample": args.upsample,
            "false_max": max(false),
            "false_over_face_max": max(ratios),
            "pair": pair,
            "thresholds": rows,
        },
    )


if __name__ == "__main__":
    main()
