"""Write Parquet atomically and read it back with its contract checked."""

import os
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from hepclust.errors import InputError
from hepclust.io.schema import check_contract


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds,
    so a failure never leaves a partial file nor clobbers an existing one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        Path(tmp).chmod(0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        Path(tmp).replace(path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: str | Path):
    """Like `atomic_path` for a directory: yield an empty temporary directory beside
    `path` that replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        tmp.replace(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def conform(table: pa.Table, schema: pa.Schema, source: str | Path) -> pa.Table:
    """Cast `table` to `schema` (its columns first, in order; extra columns kept after)
    and reject non-finite values in float columns."""
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise InputError(source, f"missing column(s) {', '.join(missing)}")
    extra = [n for n in table.column_names if n not in schema.names]
    try:
        core = table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise InputError(source, f"cannot convert to the expected types: {err}") from err
    for name in schema.names:
        _check_finite(core.column(name), name, source)
    for name in extra:
        core = core.append_column(name, table.column(name))
    return core


def _check_finite(column: pa.ChunkedArray, name: str, source: str | Path) -> None:
    if pa.types.is_list(column.type):
        column = pc.list_flatten(column)
    if not pa.types.is_floating(column.type):
        return
    values = column.to_numpy(zero_copy_only=False)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(source, f"column {name} has {int(bad.sum())} NaN or infinite value(s)")


def write_table(table: pa.Table, path: str | Path, schema: pa.Schema | None = None,
                source: str | Path | None = None) -> None:
    """Write `table` to `path` atomically, conformed to `schema` when given."""
    if schema is not None:
        table = conform(table, schema, source or path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: str | Path, schema: pa.Schema | None = None,
               columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file, failing with the file named if it is unreadable, lacks a column
    of `schema`, has one of the wrong type, holds no rows, or a NaN or infinity in a float
    column (every float column read without a `schema`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        parquet = pq.ParquetFile(path)
        if schema is not None:
            check_contract(parquet.schema_arrow, schema, path)
        table = parquet.read(columns=columns)
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError) as err:  # damaged metadata: ValueError
        raise InputError(path, f"not a readable Parquet file ({err})") from err
    if table.num_rows == 0:
        raise InputError(path, "holds no rows")
    checked = table.column_names if schema is None else \
        [name for name in schema.names if name in table.column_names]
    for name in checked:
        _check_finite(table.column(name), name, path)
    return table


def merge_shuffled(paths: list[str | Path], schema: pa.Schema, seed: int) -> pa.Table:
    """Concatenate the tables at `paths` (each checked against `schema`) and shuffle the
    rows with `seed`, so that classes and shards are mixed."""
    if not paths:
        raise InputError("merge", "no input files")
    table = pa.concat_tables([read_table(p, schema).select(schema.names) for p in paths])
    order = np.random.default_rng(seed).permutation(table.num_rows)
    return table.take(pa.array(order))


def write_chunks(chunks: Iterable[pa.Table], path: str | Path, schema: pa.Schema,
                 source: str | Path) -> int:
    """Write tables one after another into one Parquet file, atomically, each conformed to
    `schema`; fails, writing nothing, if they hold no rows at all."""
    rows = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for chunk in chunks:
            writer.write_table(conform(chunk, schema, source).select(schema.names))
            rows += chunk.num_rows
        if rows == 0:
            raise InputError(source, "gave no rows to write (no event passed the selection)")
    return rows
