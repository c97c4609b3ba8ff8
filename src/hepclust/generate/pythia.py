"""A thin layer over Pythia 8 (the `pythia8mc` bindings): set up, seed, read events out."""

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import awkward as ak
import numpy as np
import pythia8mc

NEUTRINOS = {12, 14, 16}
MAX_PYTHIA_SEED = 900_000_000


def shard_seed(seed: int, *keys: int | str) -> int:
    """A Pythia seed for one shard of one process, stable across runs and machines."""
    words = [seed, *(k if isinstance(k, int) else int.from_bytes(k.encode(), "little")
                     for k in keys)]
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
    return int(state % MAX_PYTHIA_SEED) + 1


def make_pythia(settings: Sequence[str], seed: int, mpi: bool = False) -> pythia8mc.Pythia:
    """A 13 TeV pp Pythia instance with `settings` applied, seeded and quiet."""
    pythia = pythia8mc.Pythia("", False)
    common = [
        "Beams:eCM = 13000",
        "Print:quiet = on",
        "Next:numberCount = 0",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        f"PartonLevel:MPI = {'on' if mpi else 'off'}",
    ]
    for line in [*common, *settings]:
        if not pythia.readString(line):
            raise ValueError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia failed to initialise; see its log above")
    return pythia


@dataclass
class FinalState:
    """Visible final-state particles of one event, as numpy arrays."""

    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    pid: np.ndarray
    charge: np.ndarray

    @staticmethod
    def batch(finals: Sequence["FinalState"]) -> ak.Array:
        """Many events as one awkward array of records (px, py, pz, E, pid, charge)."""
        counts = [len(f.px) for f in finals]
        fields = {"px": "px", "py": "py", "pz": "pz", "E": "e", "pid": "pid", "charge": "charge"}
        return ak.zip({
            name: ak.unflatten(np.concatenate([getattr(f, attr) for f in finals]), counts)
            for name, attr in fields.items()
        })


@dataclass
class GenerationStats:
    """Counts and timings of one generation job; the rate is per CPU core."""

    events: int = 0
    selected: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    @contextmanager
    def timed(self):
        """Add the CPU and wall time spent inside the block."""
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield self
        finally:
            self.cpu_seconds += time.process_time() - cpu
            self.wall_seconds += time.perf_counter() - wall

    def as_dict(self) -> dict:
        per_core = self.selected / self.cpu_seconds if self.cpu_seconds else 0.0
        return {**self.__dict__, "selected_per_s_per_core": per_core}


def visible_final_state(event, eta_max: float) -> FinalState:
    """Final-state particles except neutrinos, within |eta| < eta_max."""
    rows = [
        (p.px(), p.py(), p.pz(), p.e(), p.id(), p.charge())
        for p in event
        if p.isFinal() and p.idAbs() not in NEUTRINOS and abs(p.eta()) < eta_max
    ]
    values = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return FinalState(*values[:, :4].T, values[:, 4].astype(np.int32),
                      np.rint(values[:, 5]).astype(np.int8))


def events(pythia: pythia8mc.Pythia, max_failures: int = 100) -> Iterator:
    """Yield Pythia's events; stop with an error after `max_failures` failures in a row."""
    failures = 0
    while True:
        if pythia.next():
            failures = 0
            yield pythia.event
        else:
            failures += 1
            if failures >= max_failures:
                raise RuntimeError(f"Pythia failed {failures} events in a row")
