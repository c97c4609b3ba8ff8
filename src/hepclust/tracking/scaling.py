"""How the clustering GNN's inference time and memory grow with the number of hits: events
simulated at several densities go through the trained pipeline, and a power law
seconds ~ hits^b is fitted (the thesis claims O(n log n), b a little above 1), to the
wall time and to the process's CPU time (steadier on a shared machine).

Memory is the peak above the starting point: on a GPU torch's peak allocation, on the
CPU the process's resident set, sampled every few milliseconds by a thread (so a spike
shorter than that may be missed)."""

import os
import threading
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hepclust.generate.fatras import GenericDetector
from hepclust.generate.tracking_events import EventSettings, simulate_event
from hepclust.tracking.hit_features import TrackingEvent
from hepclust.tracking.pipeline import (
    STAGES,
    ClusteringSettings,
    GraphSettings,
    Models,
    reconstruct,
)

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
SAMPLE_SECONDS = 0.005


def resident_bytes() -> int:
    """This process's resident set size now."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_BYTES


class PeakMemory:
    """Peak memory (bytes) used above the level at entry, while the block runs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        self._start = resident_bytes()
        self._highest = self._start
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self._highest = max(self._highest, resident_bytes())
            time.sleep(SAMPLE_SECONDS)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._start
            return
        self._running = False
        self._thread.join()
        self.peak = max(self._highest, resident_bytes()) - self._start


def fit_exponent(hits: list[float], seconds: list[float]) -> float | None:
    """b of the least-squares line log(seconds) = a + b log(hits); None for < 2 sizes."""
    if len(set(hits)) < 2:
        return None
    return float(np.polyfit(np.log(hits), np.log(seconds), 1)[0])


def _by_density(rows: list[dict]) -> dict[float, list[dict]]:
    """The rows (one dict per event) of each density, densities in increasing order."""
    return {density: [row for row in rows if row["density"] == density]
            for density in sorted({row["density"] for row in rows})}


def growth_per_step(rows: list[dict]) -> list[dict]:
    """Between each density of `rows` (one dict per event: density, hits, seconds,
    cpu_seconds) and the next, the ratios of the mean hits, wall and CPU seconds, and the
    CPU time's ratio per doubling of the hits, 2^(log cpu ratio / log hits ratio): the
    issue's time(2n) / time(n) where the events' hits do not quite double."""
    keys = ("hits", "seconds", "cpu_seconds")
    means = {density: {key: np.mean([row[key] for row in group]) for key in keys}
             for density, group in _by_density(rows).items()}
    steps = []
    for low, high in pairwise(means):
        ratios = {f"{key}_ratio": float(means[high][key] / means[low][key]) for key in keys}
        doubling = 2 ** (np.log(ratios["cpu_seconds_ratio"]) / np.log(ratios["hits_ratio"]))
        steps.append({"densities": [low, high], **ratios,
                      "cpu_seconds_per_hits_doubling": float(doubling)})
    return steps


def _memory_exponent(rows: list[dict]) -> float | None:
    """The exponent of each density's highest peak against its mean hits: the heap that
    an event leaves behind is reused by the next, so an event no larger than one before
    it shows almost no peak of its own."""
    groups = _by_density(rows).values()
    return fit_exponent([float(np.mean([row["hits"] for row in group])) for group in groups],
                        [max(max(row["memory_mb"] for row in group), 1e-3) for group in groups])


def _timed(event: TrackingEvent, models: Models, graph: GraphSettings,
           clustering: ClusteringSettings, device: torch.device):
    """(reconstruction, wall seconds, CPU seconds) of one pass over `event`."""
    began, cpu = time.perf_counter(), time.process_time()
    found = reconstruct(event, models, graph, clustering, device)
    return found, time.perf_counter() - began, time.process_time() - cpu


def scaling_benchmark(models: Models, settings: EventSettings, densities: list[float],
                      events: int, seed: int, graph: GraphSettings,
                      clustering: ClusteringSettings, device: torch.device,
                      warm_passes: int = 2) -> dict:
    """Inference time and peak memory of `events` simulated events at each density (event
    numbers apart from the workflow's, seeded by `seed`), with the exponent fitted.

    Each event goes through 1 + `warm_passes` times: the first pass gives the peak memory
    and the cold times, the fastest of the others the times (`seconds`, `cpu_seconds`,
    the stages') that the exponents are fitted to. The first event of a density larger
    than any before pays for growing the heap (fresh pages the kernel zeroes), a tenth of
    its time or more, which a process reconstructing many events pays once; the fastest
    warm pass is the one least slowed by other work on a shared machine."""
    if warm_passes < 1:
        raise ValueError(f"warm_passes must be at least 1, not {warm_passes}")
    detector = GenericDetector(settings.field_tesla)
    rows = []
    for index, density in enumerate(tqdm(densities, desc="densities", unit="density")):
        for event_number in range(events):
            hits = simulate_event(detector, settings.at_density(density), seed,
                                  10_000_000 + 1000 * index + event_number).hits
            event = TrackingEvent.from_hits(hits, f"simulated event at density {density}")
            with PeakMemory(device) as memory:
                _, cold_seconds, cold_cpu = _timed(event, models, graph, clustering, device)
            found, seconds, cpu = min((_timed(event, models, graph, clustering, device)
                                       for _ in range(warm_passes)), key=lambda run: run[2])
            rows.append({"density": density, "hits": len(event), "seconds": seconds,
                         "cpu_seconds": cpu, "cold_seconds": cold_seconds,
                         "cold_cpu_seconds": cold_cpu,
                         "memory_mb": memory.peak / 2**20,
                         "stage_seconds": {s: found.seconds.get(s, 0.0) for s in STAGES},
                         "depth": found.clustering.depth,
                         "candidate_edges": int(found.candidates.shape[1]),
                         "refined_edges": int(found.refined.shape[1])})
    hits = [r["hits"] for r in rows]
    seconds = [r["seconds"] for r in rows]
    return {
        "hits": hits,
        "seconds": seconds,
        "cpu_seconds": [r["cpu_seconds"] for r in rows],
        "memory_mb": [r["memory_mb"] for r in rows],
        "density": [r["density"] for r in rows],
        "exponent": fit_exponent(hits, seconds),
        "cpu_exponent": fit_exponent(hits, [r["cpu_seconds"] for r in rows]),
        "cold_cpu_exponent": fit_exponent(hits, [r["cold_cpu_seconds"] for r in rows]),
        "growth_per_step": growth_per_step(rows),
        "memory_exponent": _memory_exponent(rows),
        "stage_exponents": {s: fit_exponent(hits, [max(r["stage_seconds"][s], 1e-6)
                                                  for r in rows]) for s in STAGES},
        "events": rows,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
