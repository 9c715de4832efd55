"""`modeldeck bench` against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest

from modeldeck.cli._bench import percentile, run_bench
from modeldeck.cli.main import main
from modeldeck.errors import InputError, ServiceError
from modeldeck.serving import create_app

from ..support import LiveServer, echo_settings

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(echo_task, tmp_path, live):
    srv = LiveServer(create_app(echo_settings(tmp_path), loader=lambda spec: echo_task)).start()
    live.append(srv)
    srv.wait_ready()
    return srv


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 95) == 3.0


def test_bench_counts_requests_and_reads_the_server_histogram(server):
    report = asyncio.run(
        run_bench(server.url, "echo", concurrency=4, requests=40, duration=None, texts=["a", "b"], items_per_request=3)
    )
    assert report.requests == 40 and report.ok == 40 and report.errors == {}
    assert report.items == 120
    assert report.latency_ms["p50"] <= report.latency_ms["p95"] <= report.latency_ms["p99"]
    # every request became one or more batches: the histogram saw them all
    assert report.mean_batch_size is not None and report.mean_batch_size >= 3
    assert report.batch_sizes["+Inf"] >= 1


def test_bench_reports_errors_by_status(server):
    report = asyncio.run(run_bench(server.url, "missing", concurrency=2, requests=6, duration=None))
    assert report.ok == 0 and report.errors == {"404": 6}


def test_bench_cli_prints_json(server, capsys):
    code = main(
        [
            "bench",
            "--url",
            server.url,
            "--model",
            "echo",
            "--requests",
            "10",
            "--concurrency",
            "2",
            "--input",
            "hello",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] == 10 and report["model"] == "echo"


def test_bench_argument_and_connection_errors():
    with pytest.raises(InputError, match="concurrency must be >= 1"):
        asyncio.run(run_bench("http://127.0.0.1:9", "echo", concurrency=0))
    with pytest.raises(ServiceError, match="cannot reach the server"):
        asyncio.run(run_bench("http://127.0.0.1:9", "echo", concurrency=1, requests=1))


def test_the_batch_size_table_prints_sizes_as_integers(capsys):
    from modeldeck.cli._bench import BenchReport, _print_report

    report = BenchReport(
        model="echo", concurrency=1, seconds=1.0, requests=3, ok=3, items=3, errors={}, latency_ms={},
        requests_per_s=3.0, items_per_s=3.0,
        batch_sizes={"1.0": 2.0, "2.0": 3.0, "+Inf": 3.0}, mean_batch_size=1.0,
    )  # fmt: skip
    _print_report(report)
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["1", "2"] in rows and ["2", "1"] in rows and ["+Inf", "0"] in rows
    assert not any("1.0" in row for row in rows)
