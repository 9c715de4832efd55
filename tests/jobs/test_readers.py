"""Readers: streaming in bounded batches, and every early check before a model could load."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modeldeck.errors import EmptyInputError, InputDecodeError, InputError, InputTypeError, ModelDeckError
from modeldeck.jobs._readers import open_source

from .inputs import texts, write_parquet


def rows(source, skip=0):
    out = []
    for batch, values in source.batches(skip=skip):
        assert batch.num_rows == len(values)
        out.extend(zip(batch.to_pylist(), values, strict=True))
    return out


def test_parquet_streams_bounded_batches_and_skips_across_row_groups(tmp_path):
    path = write_parquet(tmp_path / "in.parquet", 1000, row_group_size=128)
    source = open_source(path, "text", batch_rows=100)
    assert source.total_rows == 1000
    sizes = [batch.num_rows for batch, _ in source.batches()]
    assert max(sizes) <= 100 and sum(sizes) == 1000
    resumed = rows(source, skip=300)
    assert [r["id"] for r, _ in resumed] == list(range(300, 1000))
    assert [v for _, v in resumed] == texts(1000)[300:]


def test_csv_reads_the_column_as_text_and_skips(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n" + "".join(f"{i},{100 + i}\n" for i in range(50)))
    source = open_source(path, "text", batch_rows=8)
    assert source.schema.field("text").type == pa.string()  # digits stay text: they are the task's input
    got = rows(source, skip=5)
    assert [v for _, v in got] == [str(100 + i) for i in range(5, 50)]
    assert all(batch.num_rows <= 8 for batch, _ in source.batches())


def test_jsonl_rows_bad_lines_and_wrong_types_become_row_errors(tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"id": 0, "body": "Tim Cook flew to Paris."}),
        "",
        "{not json",
        json.dumps({"id": 2, "body": 7}),
        json.dumps(["a", "list"]),
        json.dumps({"id": 4, "body": None, "extra": {"k": 1}}),
    ]
    path.write_text("\n".join(lines) + "\n")
    source = open_source(path, "body", batch_rows=2)
    got = rows(source)
    assert len(got) == 5  # the blank line is not a row
    assert got[0] == ({"id": 0, "body": "Tim Cook flew to Paris.", "extra": None}, "Tim Cook flew to Paris.")
    assert isinstance(got[1][1], InputDecodeError) and "line 3" in got[1][1].message
    assert got[2][0]["body"] is None and got[2][1] == 7  # the task sees the int and says so
    assert isinstance(got[3][1], InputTypeError) and "list" in got[3][1].message
    assert got[4][0]["extra"] == {"k": 1}
    assert next(v for _, v in rows(source, skip=3)).code == "MD102"


def test_jsonl_streams_without_reading_the_whole_file(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts(5000)))
    batches = open_source(path, "text", batch_rows=64).batches()
    first, _ = next(batches)
    assert first.num_rows == 64
    batches.close()


def test_text_folder_rows_are_sorted_paths_and_other_files_are_counted(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.md").write_text("Second file.")
    (tmp_path / "a.txt").write_text("First file.")
    (tmp_path / "c.txt").write_bytes(b"\xff\xfe not utf-8")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / ".hidden.txt").write_text("not an input")
    source = open_source(tmp_path, None, batch_rows=2)
    assert (source.total_rows, source.skipped, source.column) == (3, 1, "text")
    got = rows(source)
    assert [r["path"] for r, _ in got] == ["a.txt", "b/two.md", "c.txt"]
    assert got[0] == ({"path": "a.txt", "text": "First file."}, "First file.")
    assert got[2][0]["text"] is None and isinstance(got[2][1], bytes)  # the task reports the bad byte


def test_image_folder_reads_bytes_and_skips_non_images(tmp_path):
    (tmp_path / "cat.PNG").write_bytes(b"\x89PNG fake")
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(tmp_path, None, kind="image")
    assert (source.total_rows, source.skipped, source.column) == (1, 1, "image")
    assert rows(source) == [({"path": "cat.PNG", "image": b"\x89PNG fake"}, b"\x89PNG fake")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyInputError, match="no image files"):
        open_source(tmp_path / "empty", None, kind="image")


@pytest.mark.parametrize("name", ["in.parquet", "in.csv", "in.jsonl"])
def test_empty_and_missing_files_are_refused(tmp_path, name):
    with pytest.raises(InputError, match="does not exist"):
        open_source(tmp_path / name, "text")
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(EmptyInputError, match="is empty"):
        open_source(tmp_path / name, "text")


def test_corrupt_parquet_names_the_file(tmp_path):
    path = tmp_path / "broken.parquet"
    write_parquet(path, 100)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(InputDecodeError, match=r"broken\.parquet"):
        open_source(path, "text")


def test_missing_column_lists_the_available_ones(tmp_path):
    path = write_parquet(tmp_path / "in.parquet", 10)
    with pytest.raises(InputError, match="no column 'body'") as info:
        open_source(path, "body")
    assert "id, text" in str(info.value)


def test_wrong_column_type_is_refused(tmp_path):
    path = write_parquet(tmp_path / "in.parquet", 10)
    with pytest.raises(InputTypeError, match="int64"):
        open_source(path, "id")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"n": 1}\n{"n": 2}\n')
    with pytest.raises(InputTypeError, match="int values, not text"):
        open_source(jsonl, "n")


def test_unknown_extension_and_no_column(tmp_path):
    (tmp_path / "in.xlsx").write_bytes(b"x")
    with pytest.raises(InputError, match=r"\.parquet, \.csv, \.jsonl"):
        open_source(tmp_path / "in.xlsx", "text")
    path = write_parquet(tmp_path / "in.parquet", 3)
    with pytest.raises(InputError, match="which column"):
        open_source(path, None)


def test_empty_parquet_table_is_refused(tmp_path):
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "none.parquet")
    with pytest.raises(EmptyInputError, match="no rows"):
        open_source(tmp_path / "none.parquet", "text")


def test_reader_errors_are_modeldeck_errors(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "ok"}\n[1]\n')
    values = [v for _, v in rows(open_source(path, "text"))]
    assert values[0] == "ok" and isinstance(values[1], ModelDeckError)
