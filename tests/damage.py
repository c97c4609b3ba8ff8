"""Seeded damage to a valid file, for the readers' fuzz tests."""

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hepclust.errors import InputError


def damaged_copies(source: Path, directory: Path, cases: int = 36,
                   seed: int = 0) -> Iterator[tuple[int, Path]]:
    """`cases` damaged copies of `source`, one at a time at the same path in `directory`
    (yielded after each is written): in turn a few flipped bits, a run of random bytes,
    and a truncation. Half the damage falls in the first 4 KiB, where formats keep their
    headers and metadata. Seeded, so a failure replays."""
    data = source.read_bytes()
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / source.name
    for case in range(cases):
        damaged = bytearray(data)
        limit = min(len(data), 4096) if case % 2 else len(data)
        kind = case % 3
        if kind == 0:
            for _ in range(rng.integers(1, 9)):
                damaged[rng.integers(limit)] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            start, length = int(rng.integers(limit)), int(rng.integers(1, 65))
            damaged[start:start + length] = rng.integers(0, 256, length, np.uint8).tobytes()
            damaged = damaged[:len(data)]
        else:
            damaged = damaged[:int(rng.integers(len(data)))]
        target.write_bytes(bytes(damaged))
        yield case, target


def assert_read_or_refused(read: Callable[[Path], object], source: Path, directory: Path,
                           cases: int = 36, seed: int = 0) -> int:
    """Read every damaged copy of `source` with `read`: each must succeed or raise an
    `InputError` naming the file. Returns how many were refused."""
    refused = []
    for case, path in damaged_copies(source, directory, cases, seed):
        try:
            read(path)
        except InputError as err:
            refused.append((case, str(err)))
        except Exception as err:  # what the test is for: no other exception escapes
            pytest.fail(f"damage case {case} (seed {seed}) of {source.name}: "
                        f"{type(err).__name__}: {err}")
    unnamed = [(case, message) for case, message in refused if source.name not in message]
    assert not unnamed, f"errors that do not name the file: {unnamed}"
    return len(refused)
