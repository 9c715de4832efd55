"""Run every benchmark in turn (``make bench``); each prints its figures and ratios and saves JSON in .bench/.

python benchmarks/run.py [--quick]     # --quick: shorter runs, for a smoke check of the scripts
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    short = ["--duration", "5"] if args.quick else []
    runs = [
        ["startup.py", *(["--runs", "5"] if args.quick else [])],
        ["serving.py", "embed", *short],
        ["serving.py", "ner", *short],
        ["serving.py", "memory", *(["--duration", "20"] if args.quick else [])],
        ["jobs.py", "embed", *(["--rows", "2000"] if args.quick else [])],
        ["jobs.py", "memory", *(["--rows", "5000"] if args.quick else [])],
        ["spark.py", *(["--rows", "2000"] if args.quick else [])],
        ["vision.py", "preprocess", *(["--rounds", "2"] if args.quick else [])],
        ["vision.py", "served", *short],
        ["faces.py", "embed", *(["--rounds", "2", "--images", "16"] if args.quick else [])],
        ["faces.py", "gallery"],
        ["generate.py", *short],
        ["documents.py", *(["--docs", "8", "--rounds", "1"] if args.quick else [])],
        ["tensor.py", "served", *short],
        ["tensor.py", "overhead", *(["--rounds", "5"] if args.quick else [])],
        ["classify_image.py", *(["--rounds", "2"] if args.quick else [])],
        ["store.py", *(["--rounds", "2"] if args.quick else [])],
        ["face_scores.py"],
    ]
    for run in runs:
        print(f"\n$ python benchmarks/{' '.join(run)}", flush=True)
        subprocess.run([sys.executable, str(HERE / run[0]), *run[1:]], check=True, cwd=HERE)


if __name__ == "__main__":
    main()
