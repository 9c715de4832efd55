"""Small deterministic inputs for job tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def texts(n: int) -> list[str]:
    people = ("Tim Cook", "Ada Lovelace", "Angela Merkel", "Marie Curie")
    places = ("Paris", "London", "Berlin", "Tokyo", "Nairobi")
    return [f"{people[i % 4]} flew to {places[i % 5]} on day {i}." for i in range(n)]


def write_parquet(path: Path, n: int, *, row_group_size: int | None = None) -> Path:
    table = pa.table({"id": list(range(n)), "text": texts(n)})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path
