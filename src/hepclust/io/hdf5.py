"""Opening HDF5 files so that every failure is an `InputError` naming the file."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from hepclust.errors import InputError

SIGNATURE = b"\x89HDF\r\n\x1a\n"


@contextmanager
def read_errors(path: str | Path) -> Iterator[None]:
    """Turn h5py's OSError (unreadable, truncated or corrupt data) into an `InputError`."""
    try:
        yield
    except OSError as err:
        raise InputError(path, f"not a readable HDF5 file ({err})") from err


@contextmanager
def open_hdf5(path: str | Path) -> Iterator[h5py.File]:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    with read_errors(path), h5py.File(path, "r") as handle:
        yield handle


def dataset(handle: h5py.File, name: str, ndim: int, path: str | Path) -> h5py.Dataset:
    """The dataset `name`, which must exist and have `ndim` dimensions."""
    found = handle.get(name)
    if not isinstance(found, h5py.Dataset):
        raise InputError(path, f"has no dataset {name}")
    if found.ndim != ndim:
        raise InputError(path, f"dataset {name} has shape {found.shape}, expected {ndim} axes")
    return found


def names(handle: h5py.File, name: str, path: str | Path) -> list[str]:
    """A dataset of byte strings, decoded."""
    values = dataset(handle, name, 1, path)[()]
    if values.dtype.kind not in "SO":
        raise InputError(path, f"dataset {name} does not hold names")
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def check_finite(values: np.ndarray, what: str, path: str | Path) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(path, f"{what} holds {int(bad.sum())} NaN or infinite value(s)")
