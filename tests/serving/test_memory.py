"""Unmapping the library pages a process touched once: which mappings qualify, and that nothing changes but memory."""

from __future__ import annotations

import ctypes
import dataclasses
import json
import mmap
import multiprocessing
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modeldeck.config import Settings
from modeldeck.serving._memory import drop_library_pages, library_mappings
from modeldeck.serving.models import ProcessModel, WorkerProcess, worker_context
from modeldeck.serving.specs import ModelSpec

from ..support import EchoTask, echo_info

_SMAPS = """\
7f0000000000-7f0000004000 r-xp 00000000 fe:00 1 /venv/lib/libcublasLt.so.13
Rss:                  16 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
7f0000004000-7f0000008000 r--p 00004000 fe:00 1 /venv/lib/libcublasLt.so.13
Rss:                  16 kB
Private_Dirty:         8 kB
Shared_Dirty:          0 kB
Anonymous:             8 kB
VmFlags: rd mr mw me
7f0000008000-7f000000c000 rw-p 00008000 fe:00 1 /venv/lib/libcublasLt.so.13
Rss:                  16 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f000000c000-7f0000010000 r--p 00000000 fe:00 2 /models/model.safetensors
Rss:                  16 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000010000-7f0000014000 rw-p 00000000 00:00 0
Rss:                  16 kB
Anonymous:            16 kB
7f0000014000-7f0000018000 r--s 00000000 fe:00 3 /venv/lib/shared.so
Rss:                  16 kB
Private_Dirty:         0 kB
7f0000018000-7f000001c000 r--p 00000000 fe:00 4 /venv/lib/_core.cpython-311-x86_64-linux-gnu.so
Rss:                  16 kB
Private_Dirty:         0 kB
Shared_Dirty:          0 kB
Anonymous:             0 kB
"""


def test_only_read_only_private_library_mappings_without_a_written_page_qualify(tmp_path):
    smaps = tmp_path / "smaps"
    smaps.write_text(_SMAPS)
    assert library_mappings(str(smaps)) == [
        (0x7F0000000000, 0x7F0000004000),  # code, never written
        (0x7F0000018000, 0x7F000001C000),  # the last mapping of the file counts too
    ]  # not: relocated read-only data, writable data, model weights, anonymous or shared mappings
    assert library_mappings(str(tmp_path / "missing")) == []


def _resident_kib(ranges: list[tuple[int, int]]) -> int:
    wanted = set(ranges)
    total = 0
    current = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if not first.endswith(":"):
                start, end = (int(x, 16) for x in first.split("-"))
                current = (start, end)
            elif first == "Rss:" and current in wanted:
                total += int(line.split()[1])
    return total


def test_dropping_unmaps_library_pages_and_keeps_written_ones(tmp_path):
    # A private mapping of a "library" that was written and then made read-only, as the dynamic
    # loader does with relocated data: dropping its pages would bring back the file's bytes.
    library = tmp_path / "libwritten.so"
    library.write_bytes(b"\0" * mmap.PAGESIZE)
    with library.open("rb") as file:
        mapped = mmap.mmap(file.fileno(), mmap.PAGESIZE, access=mmap.ACCESS_COPY)
    mapped[:8] = b"relocate"
    address = next(int(line.split("-")[0], 16) for line in open("/proc/self/maps") if str(library) in line)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    assert libc.mprotect(address, mmap.PAGESIZE, mmap.PROT_READ) == 0
    try:
        matrix = np.arange(1, 10, dtype=np.float64).reshape(3, 3) + np.eye(3)
        before = np.linalg.inv(matrix)
        ranges = library_mappings()
        assert ranges and all(start != address for start, _ in ranges)
        before_kib = _resident_kib(ranges)
        assert drop_library_pages() > 0
        after_kib = _resident_kib(ranges)
        assert after_kib < before_kib / 4, (before_kib, after_kib)  # what ran since came back, no more
        assert np.array_equal(np.linalg.inv(matrix), before)  # the libraries work as before
        assert ctypes.string_at(address, 8) == b"relocate"  # the written page was left alone
    finally:
        libc.mprotect(address, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_WRITE)
        mapped.close()


_SETTLE = textwrap.dedent(
    """
    import json, sys
    import numpy
    from modeldeck.serving._memory import library_mappings

    def resident():
        ranges = set(library_mappings())
        total, current = 0, None
        for line in open("/proc/self/smaps"):
            first = line.split(maxsplit=1)[0]
            if not first.endswith(":"):
                current = tuple(int(x, 16) for x in first.split("-"))
            elif first == "Rss:" and current in ranges:
                total += int(line.split()[1])
        return total

    before = resident()
    import modeldeck.serving._settle
    import gc
    print(json.dumps({"before": before, "after": resident(), "frozen": gc.get_freeze_count()}))
    """
)


def test_the_fork_server_settles_last(monkeypatch):
    preloads: list[list[str]] = []
    context = multiprocessing.get_context("forkserver")
    monkeypatch.setattr(context, "set_forkserver_preload", preloads.append)
    assert worker_context("forkserver", ["numpy"]) is context
    assert preloads == [["numpy", "modeldeck.serving._settle"]]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    done = subprocess.run([sys.executable, "-c", _SETTLE], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["frozen"] > 0  # the collector leaves the preloaded objects (and their pages) alone
    assert out["after"] < out["before"] / 4, out  # numpy's and Python's library pages, unmapped


class ResidentTask(EchoTask):
    """Answers each input with the KiB of read-only library pages its worker has mapped right now."""

    def forward(self, batch: Sequence[str]) -> list[str]:
        return [str(_resident_kib(library_mappings())) for _ in batch]


def resident_loader(spec: ModelSpec, settings: Settings) -> ResidentTask:
    import scipy.linalg  # a library the fork server did not preload: loading touches its pages

    scipy.linalg.lu(np.eye(64) * 2.0)
    info = dataclasses.replace(echo_info(), card={"at_load": _resident_kib(library_mappings())})
    return ResidentTask(info, batch_size=settings.max_batch_size, max_text_chars=settings.max_text_chars)


def test_a_worker_unmaps_the_library_pages_its_load_touched(tmp_path):
    settings = Settings.from_env({}, home=tmp_path, models=("a",))
    spec = ModelSpec("resident", None, "echo")
    worker = WorkerProcess([spec], settings, loader=resident_loader, context=worker_context("forkserver", []))
    model = ProcessModel(spec, settings, worker=worker)
    model.start()
    try:
        serving = int(json.loads(model.run_batch([("now", {})])[0])["text"])
    finally:
        model.close()
    assert serving < model.info.card["at_load"] / 2, (model.info.card["at_load"], serving)
