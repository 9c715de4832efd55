"""Import and CLI start-up time, each beside a bare interpreter measured in the same run.

    python benchmarks/startup.py [--runs 20]

Reports medians: `python -c pass`, `import modeldeck`, `modeldeck --help`, and the time each adds
over the bare interpreter. Targets: import under 150 ms, --help under 300 ms (wall, including the
interpreter's own start-up).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import save

MODELDECK = str(Path(sys.executable).with_name("modeldeck"))


def median_seconds(cmd: list[str], runs: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bare = median_seconds([sys.executable, "-c", "pass"], args.runs)
    imported = median_seconds([sys.executable, "-c", "import modeldeck"], args.runs)
    helped = median_seconds([MODELDECK, "--help"], args.runs)
    result = {
        "python_pass_ms": bare * 1000,
        "import_modeldeck_ms": imported * 1000,
        "import_modeldeck_over_bare_ms": (imported - bare) * 1000,
        "cli_help_ms": helped * 1000,
        "cli_help_over_bare_ms": (helped - bare) * 1000,
        "runs": args.runs,
    }
    print(f"median of {args.runs} runs:")
    print(f"  python -c pass        {bare * 1000:7.1f} ms")
    print(f"  import modeldeck      {imported * 1000:7.1f} ms  (+{(imported - bare) * 1000:.1f} ms over bare)")
    print(f"  modeldeck --help      {helped * 1000:7.1f} ms  (+{(helped - bare) * 1000:.1f} ms over bare)")
    print(f"  saved {save('startup', result)}")


if __name__ == "__main__":
    main()
