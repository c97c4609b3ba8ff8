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


@pytest.fixture(scope="session")
def toy_jets():
    """A small JETS table of random jets: 3 classes, 5 to 20 constituents each."""
    import numpy as np
    import pyarrow as pa

    from hepclust.io.parquet import conform
    from hepclust.io.schema import JETS

    rng = np.random.default_rng(0)
    n = 60
    counts = rng.integers(5, 21, n)
    lists = {}
    for name, low, high in (("pt", 1, 300), ("eta", -0.5, 0.5), ("phi", -0.5, 0.5),
                            ("e", 1, 400)):
        lists[f"part_{name}"] = [sorted(rng.uniform(low, high, c), reverse=name == "pt")
                                 for c in counts]
    lists["part_pid"] = [rng.choice([22, 211, -211, 130, 11], c) for c in counts]
    lists["part_charge"] = [np.where(np.isin(p, (211,)), 1, np.where(np.isin(p, (-211, 11)), -1, 0))
                            for p in lists["part_pid"]]
    table = {"jet_pt": rng.uniform(800, 1200, n), "jet_eta": rng.uniform(-1, 1, n),
             "jet_phi": rng.uniform(-3, 3, n), "jet_mass": rng.uniform(20, 250, n),
             "jet_e": rng.uniform(900, 2000, n), "n_constituents": counts,
             "contained": np.ones(n, bool), "label": np.arange(n) % 3, **lists}
    return conform(pa.table(table), JETS, "toy jets")
