"""Damaged-file makers shared by the format readers' tests."""

from pathlib import Path

import pytest


@pytest.fixture
def garbage_file():
    """Write arbitrary bytes at `path`."""

    def make(path: Path) -> Path:
        path.write_bytes(bytes(range(7, 256)) * 8)
        return path

    return make


@pytest.fixture
def truncated_copy():
    """Write the first half of `source` at `path`, as an interrupted download leaves it."""

    def make(source: Path, path: Path) -> Path:
        data = source.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return make


@pytest.fixture
def empty_file():
    def make(path: Path) -> Path:
        path.write_bytes(b"")
        return path

    return make
