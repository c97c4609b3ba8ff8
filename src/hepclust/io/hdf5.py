"""Opening HDF5 files so that every failure is an `InputError` naming the file."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from hepclust.errors import InputError

SIGNATURE = b"\x89HDF\r\n\x1a\n"


# What h5py raises on a damaged file: OSError for unreadable or truncated data, and for
# corrupt metadata RuntimeError ("bad heap free list"), KeyError, or ValueError and
# TypeError where a corrupt type message cannot become a numpy dtype.
H5PY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


@contextmanager
def read_errors(path: str | Path) -> Iterator[None]:
    """Turn h5py's errors on unreadable, truncated or corrupt files into an `InputError`."""
    try:
        yield
    except InputError:
        raise
    except H5PY_ERRORS as err:
        raise InputError(path, f"not a readable HDF5 file ({type(err).__name__}: "
                               f"{err})") from err


@contextmanager
def open_hdf5(path: str | Path) -> Iterator[h5py.File]:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    with read_errors(path), h5py.File(path, "r") as handle:
        yield handle


def dataset(handle: h5py.File, name: str, ndim: int, path: str | Path,
            numeric: bool = False) -> h5py.Dataset:
    """The dataset `name`, which must exist and have `ndim` dimensions, and hold numbers
    if `numeric`."""
    if name not in handle:  # asked first: get() would hide a corrupt heap as "no dataset"
        raise InputError(path, f"has no dataset {name}")
    found = handle[name]
    if not isinstance(found, h5py.Dataset):
        raise InputError(path, f"has no dataset {name}")
    if found.ndim != ndim:
        raise InputError(path, f"dataset {name} has shape {found.shape}, expected {ndim} axes")
    if numeric:
        check_numeric(found.dtype, f"dataset {name}", path)
    return found


def check_numeric(dtype: np.dtype, what: str, path: str | Path) -> None:
    """Integers, or floats of at most 64 bits: what the readers compute with."""
    if not (dtype.kind in "iu" or (dtype.kind == "f" and dtype.itemsize <= 8)):
        raise InputError(path, f"{what} holds {dtype} values, not numbers")


def names(handle: h5py.File, name: str, path: str | Path) -> list[str]:
    """A dataset of byte strings, decoded."""
    values = dataset(handle, name, 1, path)[()]
    if values.dtype.kind not in "SO":
        raise InputError(path, f"dataset {name} does not hold names")
    try:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    except UnicodeDecodeError as err:
        raise InputError(path, f"dataset {name} holds a name that is not UTF-8 ({err})") \
            from err


def check_finite(values: np.ndarray, what: str, path: str | Path) -> None:
    check_numeric(values.dtype, what, path)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(path, f"{what} holds {int(bad.sum())} NaN or infinite value(s)")
