"""JSON files written atomically, with numpy values made plain."""

import json
from pathlib import Path

import numpy as np

from hepclust.errors import InputError
from hepclust.io.parquet import atomic_path


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_json(data, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=_plain) + "\n")


def read_json(path: str | Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as err:
        raise InputError(path, "no such file") from err
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err})") from err
