"""Simulated TrackML events: gun -> ACTS Fatras -> digitisation -> TrackML tables.

An event depends only on the run seed and its event number, so events are the same
whichever shard makes them. The tables follow `TRACKML_HITS` (hits joined with their
truth, weights included) and `TRACKML_PARTICLES`, exactly what the TrackML reader
gives for a real event.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from hepclust.generate import digitize
from hepclust.generate.fatras import GenericDetector, Modules, pack_barcode
from hepclust.generate.particle_gun import GunSettings, shoot
from hepclust.generate.pythia import GenerationStats, shard_seed
from hepclust.io.parquet import conform
from hepclust.io.schema import TRACKML_HITS, TRACKML_PARTICLES
from hepclust.io.trackml import write_trackml_csv
from hepclust.tracking.weights import event_weights

# A full TrackML event (mu = 200 pile-up): about 10,000 particles and 100,000 hits.
FULL_EVENT_PARTICLES, FULL_EVENT_VERTICES = 10_000, 200


@dataclass(frozen=True)
class EventSettings:
    gun: GunSettings = field(default_factory=GunSettings)
    noise_fraction: float = 0.1  # of all hits
    field_tesla: float = 2.0
    interactions: bool = True

    @classmethod
    def from_config(cls, generate: dict) -> "EventSettings":
        """Settings from the config's ``tracking.generate`` section."""
        density = generate["density"]
        gun = GunSettings(
            particles=max(1, round(FULL_EVENT_PARTICLES * density)),
            vertices=max(1, round(FULL_EVENT_VERTICES * density)),
            pt_min=generate["pt_min"],
            pt_max=generate["pt_max"],
            pt_power=generate["pt_power"],
            eta_max=generate["eta_max"],
            lepton_fraction=generate["lepton_fraction"],
        )
        return cls(gun=gun, noise_fraction=generate["noise_fraction"],
                   field_tesla=generate["field_tesla"], interactions=generate["interactions"])


def simulate_event(detector: GenericDetector, settings: EventSettings, seed: int,
                   event_id: int) -> tuple[pa.Table, pa.Table]:
    """(hits, particles) of one event, as TrackML tables."""
    rng = np.random.default_rng([seed, event_id])
    gun = shoot(settings.gun, rng)
    simhits, simulated = detector.simulate(gun, seed=shard_seed(seed, "tracking", event_id),
                                           interactions=settings.interactions)
    return trackml_tables(detector.modules, simhits, simulated, settings.noise_fraction, rng)


def trackml_tables(modules: Modules, simhits: pa.Table, simulated: pa.Table,
                   noise_fraction: float, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    """Digitise ACTS's simulated hits, add noise, and fill TrackML's hits and particles."""
    sim = simhits.to_pydict()
    rows = modules.index(np.asarray(sim["geometry_id"], dtype=np.uint64))
    truth_position = np.stack([np.asarray(sim[c]) for c in ("tx", "ty", "tz")], axis=1)
    truth_momentum = np.stack([np.asarray(sim[c]) for c in ("tpx", "tpy", "tpz")], axis=1)
    measured = digitize.smear(modules, rows, truth_position, rng)
    n_noise = round(len(rows) * noise_fraction / (1.0 - noise_fraction))
    noise_rows, noise_position = digitize.noise(modules, n_noise, rng)

    particle_id = np.concatenate([pack_barcode(sim), np.zeros(n_noise, dtype=np.int64)])
    rows = np.concatenate([rows, noise_rows])
    position = np.concatenate([measured, noise_position])
    # Noise hits' truth is their own position and no momentum, as in TrackML.
    truth_position = np.concatenate([truth_position, noise_position])
    truth_momentum = np.concatenate([truth_momentum, np.zeros((n_noise, 3))])
    order = np.lexsort((rng.random(len(rows)), modules.module_id[rows],
                        modules.layer_id[rows], modules.volume_id[rows]))
    columns = {
        "hit_id": np.arange(1, len(rows) + 1),
        **{c: position[order, i] for i, c in enumerate("xyz")},
        "volume_id": modules.volume_id[rows[order]],
        "layer_id": modules.layer_id[rows[order]],
        "module_id": modules.module_id[rows[order]],
        "particle_id": particle_id[order],
        **{c: truth_position[order, i] for i, c in enumerate(("tx", "ty", "tz"))},
        **{c: truth_momentum[order, i] for i, c in enumerate(("tpx", "tpy", "tpz"))},
        "weight": np.zeros(len(rows)),
    }
    hits = conform(pa.table(columns), TRACKML_HITS, "simulated hits")
    particles = _particles(simulated.to_pydict(), columns["particle_id"])
    weights = pa.array(event_weights(hits, particles), pa.float32())
    hits = hits.set_column(hits.schema.get_field_index("weight"), "weight", weights)
    return hits, particles


def _particles(simulated: dict[str, list], hit_particles: np.ndarray) -> pa.Table:
    particle_id = pack_barcode({k: np.asarray(v) for k, v in simulated.items()})
    ids, counts = np.unique(hit_particles[hit_particles != 0], return_counts=True)
    nhits = np.zeros(len(particle_id), dtype=np.int64)
    found = np.isin(particle_id, ids)
    nhits[found] = counts[np.searchsorted(ids, particle_id[found])]
    table = pa.table({
        "particle_id": particle_id,
        "particle_type": simulated["particle_type"],
        **{c: simulated[c] for c in ("vx", "vy", "vz", "px", "py", "pz", "q")},
        "nhits": nhits,
    })
    return conform(table, TRACKML_PARTICLES, "simulated particles")


def simulate_events(event_ids: range, seed: int, settings: EventSettings,
                    directory: str | Path) -> GenerationStats:
    """Write the TrackML CSV files of each event into `directory`; returns the timings."""
    stats = GenerationStats()
    with stats.timed():
        detector = GenericDetector(settings.field_tesla)
        for event_id in tqdm(event_ids, desc="tracking events", unit="event"):
            hits, particles = simulate_event(detector, settings, seed, event_id)
            write_trackml_csv(hits, particles, directory, event_id)
            stats.events += 1
            stats.selected += 1
    return stats
