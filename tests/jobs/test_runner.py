"""run_job with the real spaCy ner and MiniLM embed models: rows, order, results, errors, outputs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeldeck.errors import InputError, JobError, OptionError, TooManyErrorsError
from modeldeck.jobs import read_manifest, run_job

from .inputs import texts, write_parquet

pytestmark = pytest.mark.slow


def test_parquet_input_keeps_columns_and_order_and_matches_the_python_api(tmp_path, ner):
    path = write_parquet(tmp_path / "in.parquet", 250, row_group_size=64)
    summary = run_job(ner, path, tmp_path / "out", column="text", chunk_rows=100, progress=False)
    assert (summary.rows, summary.errors, summary.resumed_rows, summary.format) == (250, 0, 0, "parquet")
    out = pq.read_table(tmp_path / "out")
    assert out.column_names == ["id", "text", "result", "error"]
    assert out.column("id").to_pylist() == list(range(250))
    assert out.column("text").to_pylist() == texts(250)
    expected = [r.to_dict() for r in ner(texts(250))]
    assert out.column("result").to_pylist() == expected
    assert out.column("error").null_count == 250
    manifest = read_manifest(tmp_path / "out")
    assert manifest["complete"] and [p["rows"] for p in manifest["parts"]] == [100, 100, 50]


def test_task_name_loads_the_model_and_options_apply(tmp_path):
    path = write_parquet(tmp_path / "in.parquet", 20)
    summary = run_job("ner", path, tmp_path / "out", column="text", options={"labels": ["GPE"]}, progress=False)
    assert summary.rows == 20
    results = pq.read_table(tmp_path / "out").column("result").to_pylist()
    assert all(e["label"] == "GPE" for r in results for e in r["entities"])
    assert sum(len(r["entities"]) for r in results) == 20  # one place per sentence


def test_csv_and_jsonl_inputs_embed_like_the_python_api(tmp_path, embed):
    data = texts(40)
    csv = tmp_path / "in.csv"
    csv.write_text("n,body\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(data)))
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"n": i, "body": t}) + "\n" for i, t in enumerate(data)))
    expected = np.stack([r.vector for r in embed(data)])
    for source in (csv, jsonl):
        out_path = tmp_path / f"out-{source.suffix[1:]}"
        run_job(embed, source, out_path, column="body", progress=False)
        out = pq.read_table(out_path)
        assert out.column("n").to_pylist() == list(range(40))
        assert out.column("body").to_pylist() == data
        vectors = np.array([r["vector"] for r in out.column("result").to_pylist()], dtype=np.float32)
        np.testing.assert_allclose(vectors, expected, atol=1e-5)
        assert out.schema.field("result").type.field("vector").type == pa.list_(pa.float32())


def test_bad_rows_become_error_entries_and_the_job_goes_on(tmp_path, ner):
    path = tmp_path / "in.jsonl"
    rows = ["Tim Cook flew to Paris.", None, "", 42, "Ada Lovelace lived in London."]
    path.write_text("".join(json.dumps({"i": i, "text": t}) + "\n" for i, t in enumerate(rows)) + "{oops\n")
    summary = run_job(ner, path, tmp_path / "out", column="text", progress=False)
    assert (summary.rows, summary.errors) == (6, 4)
    out = pq.read_table(tmp_path / "out").to_pylist()
    codes = [r["error"] and r["error"]["code"] for r in out]
    assert codes == [None, "MD102", "MD101", "MD102", None, "MD104"]
    assert "int" in out[3]["error"]["message"]
    assert out[0]["result"] == ner("Tim Cook flew to Paris.").to_dict()
    assert out[4]["result"] == ner("Ada Lovelace lived in London.").to_dict()
    assert all(r["result"] is None for r in out if r["error"])


def test_a_lone_surrogate_in_a_row_is_that_rows_input_error(tmp_path, ner):
    # JSON allows "\\ud800"; no tokenizer or UTF-8 writer does. It used to surface as MD500 UnicodeEncodeError.
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "Tim Cook flew to Paris."}\n{"text": "bad \\ud800 text"}\n')
    summary = run_job(ner, path, tmp_path / "out", column="text", progress=False)
    assert (summary.rows, summary.errors) == (2, 1)
    out = pq.read_table(tmp_path / "out").to_pylist()
    assert out[0]["error"] is None
    assert out[1]["error"]["code"] == "MD105" and "surrogate" in out[1]["error"]["message"]


def test_text_folder(tmp_path, ner):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, text in enumerate(texts(5)):
        (folder / f"{i:02d}.txt").write_text(text)
    (folder / "image.png").write_bytes(b"\x89PNG")
    summary = run_job(ner, folder, tmp_path / "out", progress=False)
    assert (summary.rows, summary.skipped_files) == (5, 1)
    out = pq.read_table(tmp_path / "out")
    assert out.column("path").to_pylist() == [f"{i:02d}.txt" for i in range(5)]
    assert out.column("result").to_pylist() == [r.to_dict() for r in ner(texts(5))]


def test_jsonl_output_matches_parquet_output(tmp_path, ner):
    path = write_parquet(tmp_path / "in.parquet", 30)
    run_job(ner, path, tmp_path / "out", column="text", progress=False)
    summary = run_job(ner, path, tmp_path / "out.jsonl", column="text", chunk_rows=7, progress=False)
    assert summary.format == "jsonl"
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert lines == pq.read_table(tmp_path / "out").to_pylist()
    manifest = read_manifest(tmp_path / "out.jsonl", "jsonl")
    assert manifest["rows"] == 30 and manifest["parts"][-1]["end"] == (tmp_path / "out.jsonl").stat().st_size


def test_max_errors_stops_keeps_the_committed_rows_and_resumes_with_a_higher_limit(tmp_path, ner):
    values = [t if i % 10 else "" for i, t in enumerate(texts(100))]  # 10 empty rows
    pq.write_table(pa.table({"text": values}), tmp_path / "in.parquet")
    with pytest.raises(TooManyErrorsError, match="max_errors=3"):
        run_job(ner, tmp_path / "in.parquet", tmp_path / "out", column="text", max_errors=3, chunk_rows=10,
                progress=False)  # fmt: skip
    stopped = read_manifest(tmp_path / "out")
    assert not stopped["complete"] and stopped["errors"] == 4 and 0 < stopped["rows"] < 100
    summary = run_job(ner, tmp_path / "in.parquet", tmp_path / "out", column="text", max_errors=20, chunk_rows=10,
                      resume=True, progress=False)  # fmt: skip
    assert (summary.rows, summary.errors, summary.resumed_rows) == (100, 10, stopped["rows"])
    assert pq.read_table(tmp_path / "out").column("text").to_pylist() == values


def test_early_errors_come_before_the_model_loads(tmp_path, monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    path = write_parquet(tmp_path / "in.parquet", 5)
    with pytest.raises(InputError, match="available columns: id, text"):
        run_job("ner", path, tmp_path / "out", column="body", progress=False, loader=no_load)
    with pytest.raises(InputError, match="int64"):
        run_job("ner", path, tmp_path / "out", column="id", progress=False, loader=no_load)
    with pytest.raises(OptionError, match="colour"):
        run_job("ner", path, tmp_path / "out", column="text", options={"colour": "red"}, progress=False, loader=no_load)
    with pytest.raises(InputError, match="does not exist"):
        run_job("ner", tmp_path / "nope.parquet", tmp_path / "out", column="text", progress=False, loader=no_load)
    pq.write_table(pa.table({"text": ["x"], "error": ["y"]}), tmp_path / "clash.parquet")
    with pytest.raises(InputError, match="'error'"):
        run_job("ner", tmp_path / "clash.parquet", tmp_path / "out", column="text", progress=False)
    (tmp_path / "out").mkdir()
    with pytest.raises(JobError, match="already exists"):
        run_job("ner", path, tmp_path / "out", column="text", progress=False)
    assert not (tmp_path / "out" / "_manifest.json").exists()


def test_existing_output_is_refused_and_overwrite_replaces_it(tmp_path, ner):
    path = write_parquet(tmp_path / "in.parquet", 10)
    run_job(ner, path, tmp_path / "out", column="text", progress=False)
    with pytest.raises(JobError, match="already exists"):
        run_job(ner, path, tmp_path / "out", column="text", progress=False)
    write_parquet(path, 12)
    summary = run_job(ner, path, tmp_path / "out", column="text", overwrite=True, progress=False)
    assert summary.rows == 12 and pq.read_table(tmp_path / "out").num_rows == 12
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(JobError, match="not a modeldeck job output"):
        run_job(ner, path, foreign, column="text", overwrite=True, progress=False)
    assert (foreign / "keep.txt").read_text() == "precious"
    with pytest.raises(OptionError, match="cannot be combined"):
        run_job(ner, path, tmp_path / "out", column="text", overwrite=True, resume=True, progress=False)


def test_resume_refuses_another_job_and_finishes_a_complete_one_at_once(tmp_path, ner):
    path = write_parquet(tmp_path / "in.parquet", 10)
    run_job(ner, path, tmp_path / "out", column="text", progress=False)
    with pytest.raises(JobError, match="another job") as info:
        run_job(ner, path, tmp_path / "out", column="text", options={"labels": ["GPE"]}, resume=True, progress=False)
    assert "options" in str(info.value)
    done = run_job(ner, path, tmp_path / "out", column="text", resume=True, progress=False)
    assert (done.rows, done.resumed_rows) == (10, 10)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_resume_drops_uncommitted_leftovers(tmp_path, ner, fmt):
    """What a kill between writing a part and recording it leaves behind is redone exactly once."""
    path = write_parquet(tmp_path / "in.parquet", 50)
    out = tmp_path / ("out.jsonl" if fmt == "jsonl" else "out")
    run_job(ner, path, out, column="text", chunk_rows=20, progress=False)
    manifest_file = out.with_name("out.jsonl.manifest.json") if fmt == "jsonl" else out / "_manifest.json"
    manifest = json.loads(manifest_file.read_text())
    last = manifest["parts"].pop()
    manifest.update(rows=40, complete=False)
    manifest_file.write_text(json.dumps(manifest))
    if fmt == "jsonl":
        with out.open("ab") as handle:
            handle.write(b'{"half a line')
    else:
        (out / ".part-00003.parquet.tmp").write_bytes(b"partial")
    summary = run_job(ner, path, out, column="text", chunk_rows=20, resume=True, progress=False)
    assert (summary.rows, summary.resumed_rows) == (50, 40)
    if fmt == "jsonl":
        ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    else:
        assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", *(f"part-0000{i}.parquet" for i in range(3))]
        ids = pq.read_table(out).column("id").to_pylist()
    assert ids == list(range(50))
    assert last["rows"] == 10


def test_argument_checks(tmp_path, ner):
    path = write_parquet(tmp_path / "in.parquet", 3)
    for kwargs, match in [
        ({"batch_size": 0}, "batch_size"),
        ({"chunk_rows": 0}, "chunk_rows"),
        ({"max_errors": -1}, "max_errors"),
        ({"output_format": "csv"}, "unknown output format"),
    ]:
        with pytest.raises(OptionError, match=match):
            run_job(ner, path, tmp_path / "out", column="text", progress=False, **kwargs)
    with pytest.raises(OptionError, match="is the input"):
        run_job(ner, path, path, column="text", progress=False, output_format="parquet")
