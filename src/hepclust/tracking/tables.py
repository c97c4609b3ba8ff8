"""Columns of a hits, particles or submission table, whether pyarrow or pandas."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from hepclust.errors import InputError

Table = pa.Table | pd.DataFrame


def columns(table: Table, names: list[str], source: str | Path) -> list[np.ndarray]:
    """The named columns of `table` as numpy arrays; `InputError` naming `source` if any
    is missing or holds nulls."""
    present = table.column_names if isinstance(table, pa.Table) else list(table.columns)
    missing = [name for name in names if name not in present]
    if missing:
        raise InputError(source, f"missing column(s) {', '.join(missing)}")
    arrays = []
    for name in names:
        column = table[name]
        if column.null_count if isinstance(table, pa.Table) else column.isna().any():
            raise InputError(source, f"column {name} has empty values")
        arrays.append(column.to_numpy())
    return arrays
