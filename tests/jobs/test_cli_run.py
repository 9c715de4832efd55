"""`modeldeck run` as a user runs it: a real subprocess, SIGKILLed mid-run and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeldeck.cli.main import main

from .inputs import texts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROWS = 3000


def _env(home: Path) -> dict[str, str]:
    return {"MODELDECK_HOME": str(home), "COLUMNS": "200", "PATH": "/usr/bin:/bin"}


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modeldeck", "run", *args], capture_output=True, text=True,
                          env=_env(home))  # fmt: skip


def _committed(manifest: Path) -> dict | None:
    try:
        return json.loads(manifest.read_text())
    except (FileNotFoundError, ValueError):
        return None


@pytest.mark.parametrize("out_name", ["out", "out.jsonl"])
def test_sigkill_mid_run_then_resume_gives_every_row_exactly_once_in_order(tmp_path, out_name):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(ROWS)), "text": texts(ROWS)}), src, row_group_size=500)
    out = tmp_path / out_name
    manifest = out / "_manifest.json" if out_name == "out" else tmp_path / "out.jsonl.manifest.json"
    args = ["ner", "--input", str(src), "--column", "text", "--output", str(out), "--chunk-rows", "100", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "modeldeck", "run", *args], env=_env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            state = _committed(manifest)
            if state and state["parts"]:
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no part was committed in 120 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed = _committed(manifest)
    assert killed is not None and not killed["complete"] and 0 < killed["rows"] < ROWS, killed and killed["rows"]

    again = cli(*args, home=tmp_path)  # without --resume the output is refused
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr
    resumed = cli(*args, "--resume", home=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{ROWS:,} rows (0 errors)" in resumed.stdout and f"resumed after {killed['rows']:,}" in resumed.stdout

    if out_name == "out":
        table = pq.read_table(out)
        ids, got_texts = table.column("id").to_pylist(), table.column("text").to_pylist()
        assert not [p for p in out.iterdir() if p.name.startswith(".")]
    else:
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        ids, got_texts = [r["id"] for r in lines], [r["text"] for r in lines]
    assert ids == list(range(ROWS))
    assert got_texts == texts(ROWS)


def test_cli_summary_quiet_progress_and_errors(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"body": t}) + "\n" for t in [*texts(3), ""]))
    out = tmp_path / "out.jsonl"
    assert main(["run", "ner", "--input", str(src), "--column", "body", "--output", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "4 rows (1 errors)" in captured.out and "rows/s" in captured.out
    assert captured.err == ""  # --quiet: no progress bar
    assert len(out.read_text().splitlines()) == 4
    code = main(["run", "ner", "--input", str(src), "--column", "nope", "--output", str(tmp_path / "o2")])
    assert code == 2 and "available columns: body" in capsys.readouterr().err
    code = main(["run", "ner", "--input", str(src), "--column", "body", "--output", str(out), "--master", "local[2]"])
    assert code == 2 and "--engine spark" in capsys.readouterr().err
    code = main(["run", "ner", "--input", str(src), "--column", "body", "--output", str(out), "--overwrite",
                 "--max-errors", "0", "-o", 'labels=["PERSON"]'])  # fmt: skip
    assert code == 2 and "MD701" in capsys.readouterr().err


def test_progress_bar_shows_rows_and_errors_on_stderr(tmp_path, capsys):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [*texts(5), " "]}), src)
    assert main(["run", "ner", "--input", str(src), "--column", "text", "--output", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "6/6" in err and "rows/s" in err and "errors 1" in err
