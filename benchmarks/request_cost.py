"""What the largest input allowed by the server's default limits costs a model worker.

    python benchmarks/request_cost.py [ner parse embed face-detect face-verify]

For each task, a fresh process (as a worker is) loads the default model, then answers one input
at the served limit (serving/limits.py) in its worst case: text of one token per character
(".,.,.," without spaces, which spaCy's tokenizer splits in time quadratic in the run's length);
a photo with a face (scikit-image's astronaut, scaled up, JPEG) at the pixel limit, the same pair
for face-verify, so every stage runs. After a warm-up on a small input, printed: CPU
seconds of that one input and the process's peak RSS before and after it. Written to
.bench/request-cost.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from _common import save

_CHILD = r"""
import io, json, os, resource, sys, time
import numpy as np
import modeldeck
from modeldeck.config import Settings
from modeldeck.serving.limits import InputLimits, TASK_IMAGE_PIXELS, TASK_TEXT_CHARS

task_name = sys.argv[1]
settings = Settings.from_env({})
limits = InputLimits(task_name, task_name, "text", settings)
task = modeldeck.load(task_name, settings=settings)

def peak_mib():
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(l.split()[1]) // 1024 for l in status if l.startswith("VmHWM"))

if task_name in TASK_TEXT_CHARS:
    size = limits.max_chars
    raw = (".," * size)[:size]
    what = f"{size:,} characters"
else:
    from PIL import Image
    from skimage import data

    def jpeg(side):
        buffer = io.BytesIO()
        Image.fromarray(data.astronaut()).resize((side, side)).save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()

    side = int(limits.max_pixels ** 0.5)
    raw, small = jpeg(side), jpeg(512)
    what = f"{side}x{side} = {side * side / 1e6:.1f} MP"
    if task_name == "face-verify":
        raw, small, what = [raw, raw], [small, small], f"2 x {what}"
if task_name in TASK_TEXT_CHARS:
    small = "A short warm-up sentence."
task.predict_each([small])  # first-call costs (lazy imports, allocations) are not the input's
before = peak_mib()
cpu = time.process_time()
wall = time.perf_counter()
out = task.predict_each([raw])[0]
print(json.dumps({
    "task": task_name, "input": what, "cpu_s": round(time.process_time() - cpu, 2),
    "wall_s": round(time.perf_counter() - wall, 2), "peak_rss_before_mib": before, "peak_rss_mib": peak_mib(),
    "answer": type(out).__name__,
}))
"""


def main() -> None:
    tasks = sys.argv[1:] or ["ner", "parse", "embed", "face-detect", "face-verify"]
    rows: list[dict[str, Any]] = []
    for task in tasks:
        run = subprocess.run([sys.executable, "-c", _CHILD, task], capture_output=True, text=True, timeout=900)
        if run.returncode != 0:
            raise SystemExit(f"{task} failed:\n{run.stderr[-3000:]}")
        row = json.loads(run.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"  {row['task']:<12} {row['input']:<26} CPU {row['cpu_s']:6.2f} s  wall {row['wall_s']:6.2f} s  "
            f"peak RSS {row['peak_rss_before_mib']:5d} -> {row['peak_rss_mib']:5d} MiB  ({row['answer']})"
        )
    print(f"  saved {save('request-cost', {'rows': rows})}")


if __name__ == "__main__":
    main()
