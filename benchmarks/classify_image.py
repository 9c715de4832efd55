"""classify-image end to end vs torchvision's own path on the same encoded photos.

python benchmarks/classify_image.py [--rounds 10] [--batch 16] [--threads 1]

Both sides start from JPEG bytes and end with the top-5 labels of every image: torchvision's path
decodes with Pillow, applies the weights' ``transforms()`` per image, stacks, runs resnet18
(random weights; the cost is the architecture's) and takes softmax + top-k; modeldeck runs
``task.run_batch`` over the same bytes (decode, EXIF, pixel limits, its own preprocessing, one
forward, results). The ratio is modeldeck's overhead on the whole request path.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path
from typing import Any

from _common import best_times, save


def photos(n: int) -> list[bytes]:
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    out = []
    for i in range(n):
        buffer = io.BytesIO()
        Image.fromarray(sources[i % len(sources)]).save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def run(rounds: int, batch: int, threads: int) -> dict[str, Any]:
    import torch
    import torchvision
    from PIL import Image
    from torchvision.models import ResNet18_Weights

    import modeldeck
    from modeldeck.runtimes.torchvision_classify import save_classifier_folder

    torch.set_num_threads(threads)  # a fixed pool: on a small shared machine torch's threads swing with the load
    images = photos(batch)
    model = torchvision.models.resnet18(weights=None).eval()
    transforms = ResNet18_Weights.IMAGENET1K_V1.transforms()
    categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_classifier_folder(model, Path(tmp) / "resnet18", architecture="resnet18")
        task: Any = modeldeck.load(str(folder), batch_size=batch)
        options = task.default_options

        def torchvision_path() -> list[list[tuple[str, float]]]:
            tensors = [transforms(Image.open(io.BytesIO(b)).convert("RGB")) for b in images]
            with torch.inference_mode():
                probs = torch.softmax(model(torch.stack(tensors)), dim=1)
            top = torch.topk(probs, 5, dim=1)
            return [
                [(categories[i], float(s)) for s, i in zip(row_s, row_i, strict=True)]
                for row_s, row_i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]

        def preprocess_only() -> list[Any]:
            return [task.preprocess(b, options) for b in images]

        def modeldeck_path() -> list[Any]:
            return task.run_batch([(b, options) for b in images])

        reference, ours, prep = best_times([torchvision_path, modeldeck_path, preprocess_only], rounds)
    out = {
        "batch": batch,
        "rounds": rounds,
        "torch_threads": threads,
        "torchvision_ms": 1000 * reference,
        "modeldeck_ms": 1000 * ours,
        "modeldeck_preprocess_ms": 1000 * prep,
        "ratio": ours / reference,
    }
    print(
        f"batch of {batch} JPEGs, resnet18, {threads} torch thread(s): "
        f"torchvision path {out['torchvision_ms']:.1f} ms, "
        f"modeldeck run_batch {out['modeldeck_ms']:.1f} ms ({out['ratio']:.3f}x); modeldeck's decode + "
        f"preprocessing {out['modeldeck_preprocess_ms']:.1f} ms ({100 * prep / ours:.1f}% of its total)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"saved {save('classify-image', run(args.rounds, args.batch, args.threads))}")


if __name__ == "__main__":
    main()
