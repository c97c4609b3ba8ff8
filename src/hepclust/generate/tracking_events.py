"""Simulated TrackML events: Pythia 8 (or a particle gun) -> ACTS Fatras -> cells -> tables.

An event depends only on the run seed and its event number, so events are the same
whichever shard makes them (Pythia's random generator is reseeded for each event). The
tables follow `TRACKML_HITS` (hits joined with their truth, weights and cell features)
and `TRACKML_PARTICLES`, exactly what the TrackML reader gives for a real event, and the
cells follow `TRACKML_CELLS`.
"""

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from hepclust.generate import digitize
from hepclust.generate.collisions import CollisionGenerator, CollisionSettings
from hepclust.generate.fatras import GenericDetector, Modules, pack_barcode
from hepclust.generate.particle_gun import GunSettings, shoot
from hepclust.generate.pythia import GenerationStats, shard_seed
from hepclust.io.parquet import conform
from hepclust.io.schema import TRACKML_HITS, TRACKML_PARTICLES
from hepclust.io.trackml import write_trackml_csv
from hepclust.io.trackml_cells import TRACKML_CELLS, VOLUMES, cell_features
from hepclust.tracking.weights import event_weights

# A full TrackML event (mu = 200 pile-up): about 10,000 particles and 100,000 hits.
FULL_EVENT_PARTICLES, FULL_EVENT_VERTICES = 10_000, 200
SOURCES = ("pythia", "gun")
# Noise hits over all hits of each part, as TrackML has them (docs/data.md).
TRACKML_NOISE = {"pixel": 0.06, "short strips": 0.2, "long strips": 0.4}


@dataclass(frozen=True)
class EventSettings:
    source: str = "pythia"
    density: float = 0.1
    collisions: CollisionSettings = field(default_factory=CollisionSettings)
    gun: GunSettings = field(default_factory=GunSettings)
    noise_fraction: tuple[tuple[str, float], ...] = tuple(TRACKML_NOISE.items())
    cell_threshold: float = 0.1
    field_tesla: float = 2.0
    interactions: bool = True

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {self.source!r}")

    @classmethod
    def from_config(cls, generate: dict) -> "EventSettings":
        """Settings from the config's ``tracking.generate`` section."""
        beam = {"sigma_xy_mm": generate["beam_sigma_xy_mm"],
                "sigma_z_mm": generate["beam_sigma_z_mm"]}
        collisions = CollisionSettings(
            hard_process=generate["hard_process"], pileup=generate["pileup"],
            pt_min=generate["pt_min"], eta_max=generate["eta_max"], **beam)
        gun = generate["gun"]
        gun = GunSettings(pt_min=generate["pt_min"], pt_max=gun["pt_max"],
                          pt_power=gun["pt_power"], eta_max=gun["eta_max"],
                          lepton_fraction=gun["lepton_fraction"], **beam)
        noise = {part: generate["noise_fraction"][part.replace(" ", "_")] for part in VOLUMES}
        return cls(source=generate["source"], density=generate["density"],
                   collisions=collisions, gun=gun, noise_fraction=tuple(noise.items()),
                   cell_threshold=generate["cell_threshold"],
                   field_tesla=generate["field_tesla"], interactions=generate["interactions"])

    def at_density(self, density: float) -> "EventSettings":
        return dataclasses.replace(self, density=density)


@dataclass(frozen=True)
class Event:
    """One simulated event as TrackML tables."""

    hits: pa.Table  # TRACKML_HITS, then the cell features
    particles: pa.Table  # TRACKML_PARTICLES
    cells: pa.Table  # TRACKML_CELLS


@functools.lru_cache(maxsize=2)
def _collision_generator(settings: CollisionSettings) -> CollisionGenerator:
    """Pythia set up once per process (initialisation takes seconds); reseeded per event."""
    return CollisionGenerator(settings)


def event_particles(settings: EventSettings, seed: int, event_id: int,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The particles that enter the detector (see `particle_gun.shoot` for the format)."""
    if settings.source == "gun":
        gun = dataclasses.replace(
            settings.gun, particles=max(1, round(FULL_EVENT_PARTICLES * settings.density)),
            vertices=max(1, round(FULL_EVENT_VERTICES * settings.density)))
        return shoot(gun, rng)
    generator = _collision_generator(settings.collisions)
    return generator.event(shard_seed(seed, "tracking-pythia", event_id), settings.density, rng)


def simulate_event(detector: GenericDetector, settings: EventSettings, seed: int,
                   event_id: int) -> Event:
    """One event, as TrackML tables."""
    rng = np.random.default_rng([seed, event_id])
    particles = event_particles(settings, seed, event_id, rng)
    simhits, simulated = detector.simulate(particles, seed=shard_seed(seed, "tracking", event_id),
                                           interactions=settings.interactions)
    return trackml_tables(detector.modules, simhits, simulated, dict(settings.noise_fraction),
                          settings.cell_threshold, rng)


def trackml_tables(modules: Modules, simhits: pa.Table, simulated: pa.Table,
                   noise_fraction: dict[str, float], cell_threshold: float,
                   rng: np.random.Generator) -> Event:
    """Digitise ACTS's simulated hits into cells, add noise, and fill TrackML's tables."""
    sim = simhits.to_pydict()
    rows = modules.index(np.asarray(sim["geometry_id"], dtype=np.uint64))
    truth_position = np.stack([np.asarray(sim[c]) for c in ("tx", "ty", "tz")], axis=1)
    truth_momentum = np.stack([np.asarray(sim[c]) for c in ("tpx", "tpy", "tpz")], axis=1)
    measured, cells = digitize.digitize(modules, rows, truth_position, truth_momentum, rng,
                                        cell_threshold)
    noise_rows, noise_position = _noise(modules, rows, noise_fraction, rng)
    noise_cells = digitize.noise_cells(modules, noise_rows, noise_position, rng)
    n_noise = len(noise_rows)

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
    hit_id = np.empty(len(rows), dtype=np.int64)
    hit_id[order] = columns["hit_id"]
    cells = _cells_table(cells, noise_cells, hit_id)
    features = cell_features(columns["hit_id"], columns["volume_id"], cells)
    for name in features.column_names:
        hits = hits.append_column(name, features[name])
    return Event(hits=hits, particles=particles, cells=cells)


def _noise(modules: Modules, rows: np.ndarray, noise_fraction: dict[str, float],
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise hits of each part, `noise_fraction[part]` of the part's hits after noise."""
    rows_and_positions = []
    for part, volumes in VOLUMES.items():
        fraction = noise_fraction[part]
        signal = int(np.isin(modules.volume_id[rows], volumes).sum())
        count = round(signal * fraction / (1.0 - fraction))
        rows_and_positions.append(digitize.noise(modules, count, rng,
                                                 np.isin(modules.volume_id, volumes)))
    return (np.concatenate([r for r, _ in rows_and_positions]),
            np.concatenate([p for _, p in rows_and_positions]))


def _cells_table(cells: digitize.Cells, noise_cells: digitize.Cells,
                 hit_id: np.ndarray) -> pa.Table:
    """Signal and noise cells by hit_id (noise hits come after the signal ones)."""
    n_signal = len(hit_id) - len(noise_cells.hit)
    owner = np.concatenate([cells.hit, noise_cells.hit + n_signal])
    table = pa.table({
        "hit_id": hit_id[owner],
        "ch0": np.concatenate([cells.ch0, noise_cells.ch0]),
        "ch1": np.concatenate([cells.ch1, noise_cells.ch1]),
        "value": np.concatenate([cells.value, noise_cells.value]),
    })
    table = conform(table, TRACKML_CELLS, "simulated cells")
    return table.sort_by([("hit_id", "ascending"), ("ch0", "ascending"), ("ch1", "ascending")])


def _particles(simulated: dict[str, list], hit_particles: np.ndarray) -> pa.Table:
    """TrackML's particles: the charged ones (neutral particles leave no hits)."""
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
    charged = np.asarray(simulated["q"]) != 0
    return conform(table.filter(pa.array(charged)), TRACKML_PARTICLES, "simulated particles")


def simulate_events(event_ids: range, seed: int, settings: EventSettings,
                    directory: str | Path) -> GenerationStats:
    """Write the TrackML CSV files of each event into `directory`; returns the timings."""
    stats = GenerationStats()
    with stats.timed():
        detector = GenericDetector(settings.field_tesla)
        for event_id in tqdm(event_ids, desc="tracking events", unit="event"):
            event = simulate_event(detector, settings, seed, event_id)
            write_trackml_csv(event.hits, event.particles, directory, event_id, event.cells)
            stats.events += 1
            stats.selected += 1
    return stats
