"""ACTS Fatras fast simulation of the generic detector (the TrackML detector) through pyacts.

ACTS runs as its examples framework does: a sequencer reads our gun particles from CSV,
Fatras propagates them through a uniform solenoid field with multiple scattering, energy
loss, bremsstrahlung and photon conversion, and CSV writers hand back the simulated hits
on sensitive modules and every simulated particle (secondaries included). Each event is
its own ACTS run with its own seed, so an event depends on nothing but that seed.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as csv

from hepclust.io.trackml import write_plain_csv

# ACTS's particle barcode, packed into one int64 as TrackML's particle ids are.
BARCODE_BITS = {"pv": 12, "sv": 12, "part": 16, "gen": 8, "subpart": 16}
P_MIN_GEV = 0.01
PARTICLE_CSV_COLUMNS = ("particle_id_pv", "particle_id_sv", "particle_id_part",
                        "particle_id_gen", "particle_id_subpart", "particle_type", "process",
                        "vx", "vy", "vz", "vt", "px", "py", "pz", "m", "q")


@dataclass
class Modules:
    """The sensitive modules of the detector: ids, placement and bounds (mm)."""

    geometry_id: np.ndarray  # uint64, sorted
    volume_id: np.ndarray
    layer_id: np.ndarray
    module_id: np.ndarray
    center: np.ndarray  # (n, 3)
    rotation: np.ndarray  # (n, 3, 3): global = center + rotation @ local
    half_u: np.ndarray  # (n, 2): half width along u at the -v and +v edges
    half_v: np.ndarray

    def index(self, geometry_id: np.ndarray) -> np.ndarray:
        """Row of each geometry id (all must be sensitive modules)."""
        rows = np.searchsorted(self.geometry_id, geometry_id)
        if rows.size and (rows.max() >= self.geometry_id.size
                          or not np.array_equal(self.geometry_id[rows], geometry_id)):
            raise ValueError("hits on surfaces that are not sensitive modules")
        return rows


def pack_barcode(columns: dict[str, np.ndarray]) -> np.ndarray:
    """One int64 id per particle from ACTS's barcode columns (particle_id_pv, ...)."""
    packed = np.zeros(len(columns["particle_id_pv"]), dtype=np.int64)
    for name, bits in BARCODE_BITS.items():
        values = np.asarray(columns[f"particle_id_{name}"], dtype=np.int64)
        if values.size and values.max() >= 1 << bits:
            raise ValueError(f"barcode field {name} exceeds {bits} bits")
        packed = (packed << bits) | values
    return packed


class GenericDetector:
    """The ACTS generic detector with its solenoid; build once, simulate many events."""

    def __init__(self, field_tesla: float = 2.0):
        import acts
        import acts.examples

        self._acts = acts
        self._detector = acts.examples.GenericDetector()
        self.tracking_geometry = self._detector.trackingGeometry()
        self.field = acts.ConstantBField(acts.Vector3(0, 0, field_tesla * acts.UnitConstants.T))
        self.modules = self._read_modules()

    def _sequencer(self, events: int, skip: int = 0):
        acts = self._acts
        return acts.examples.Sequencer(events=events, skip=skip, numThreads=1,
                                       trackFpes=False, logLevel=acts.logging.WARNING)

    def _read_modules(self) -> Modules:
        acts = self._acts
        with tempfile.TemporaryDirectory(prefix="hepclust-geometry-") as tmp:
            sequencer = self._sequencer(events=1)
            sequencer.addWriter(acts.examples.CsvTrackingGeometryWriter(
                level=acts.logging.WARNING, trackingGeometry=self.tracking_geometry,
                outputDir=tmp, writePerEvent=False))
            sequencer.run()
            table = csv.read_csv(Path(tmp) / "detectors.csv").to_pydict()
        return _modules_from_columns({k: np.asarray(v) for k, v in table.items()})

    def simulate(self, gun: dict[str, np.ndarray], seed: int,
                 interactions: bool = True) -> tuple[pa.Table, pa.Table]:
        """Simulate one event of gun particles (see `particle_gun.shoot`); returns the
        simulated hits and the simulated particles as ACTS's CSV writers wrote them."""
        acts = self._acts
        with tempfile.TemporaryDirectory(prefix="hepclust-fatras-") as tmp:
            _write_gun_csv(gun, Path(tmp) / "event000000000-particles.csv")
            sequencer = self._sequencer(events=1)
            sequencer.addReader(acts.examples.CsvParticleReader(
                level=acts.logging.WARNING, inputDir=tmp, inputStem="particles",
                outputParticles="particles_generated"))
            sequencer.addAlgorithm(acts.examples.FatrasSimulation(
                level=acts.logging.WARNING, inputParticles="particles_generated",
                outputParticles="particles_simulated", outputSimHits="simhits",
                randomNumbers=acts.examples.RandomNumbers(seed=seed),
                trackingGeometry=self.tracking_geometry, magneticField=self.field,
                # Fatras skips particles below pMin (0.5 GeV by default): TrackML's loopers.
                pMin=P_MIN_GEV, generateHitsOnSensitive=True, emScattering=interactions,
                emEnergyLossIonisation=interactions, emEnergyLossRadiation=interactions,
                emPhotonConversion=interactions))
            sequencer.addWriter(acts.examples.CsvSimHitWriter(
                level=acts.logging.WARNING, inputSimHits="simhits", outputDir=tmp,
                outputStem="simhits"))
            sequencer.addWriter(acts.examples.CsvParticleWriter(
                level=acts.logging.WARNING, inputParticles="particles_simulated",
                outputDir=tmp, outputStem="simulated"))
            sequencer.run()
            return (_read_csv(Path(tmp) / "event000000000-simhits.csv"),
                    _read_csv(Path(tmp) / "event000000000-simulated.csv"))


def _modules_from_columns(table: dict[str, np.ndarray]) -> Modules:
    sensitive = table["module_id"] > 0
    table = {k: v[sensitive] for k, v in table.items()}
    order = np.argsort(table["geometry_id"].astype(np.uint64))
    table = {k: v[order] for k, v in table.items()}
    rotation = np.stack([np.stack([table[f"rot_{g}{loc}"] for loc in "uvw"], axis=-1)
                         for g in "xyz"], axis=1)
    rectangle = table["bounds_type"] == 6  # RectangleBounds: min u, min v, max u, max v
    p = [table[f"bound_param{i}"] for i in range(4)]
    # TrapezoidBounds: half u at -v, half u at +v, half v.
    half_u = np.where(rectangle[:, None], np.stack([p[2], p[2]], axis=1),
                      np.stack([p[0], p[1]], axis=1))
    half_v = np.where(rectangle, p[3], p[2])
    return Modules(
        geometry_id=table["geometry_id"].astype(np.uint64),
        volume_id=table["volume_id"].astype(np.int8),
        layer_id=table["layer_id"].astype(np.int8),
        module_id=table["module_id"].astype(np.int16),
        center=np.stack([table["cx"], table["cy"], table["cz"]], axis=1),
        rotation=rotation,
        half_u=half_u,
        half_v=half_v,
    )


def _write_gun_csv(gun: dict[str, np.ndarray], path: Path) -> None:
    n = len(gun["pdg"])
    zeros = np.zeros(n, dtype=np.int64)
    columns = {
        "particle_id_pv": gun["vertex"], "particle_id_sv": gun.get("secondary", zeros),
        "particle_id_part": np.arange(1, n + 1), "particle_id_gen": zeros,
        "particle_id_subpart": zeros, "particle_type": gun["pdg"], "process": zeros,
        "vx": gun["vx"], "vy": gun["vy"], "vz": gun["vz"], "vt": np.zeros(n),
        "px": gun["px"], "py": gun["py"], "pz": gun["pz"], "m": gun["m"], "q": gun["q"],
    }
    write_plain_csv(pa.table({name: columns[name] for name in PARTICLE_CSV_COLUMNS}), path)


def _read_csv(path: Path) -> pa.Table:
    return csv.read_csv(path, convert_options=csv.ConvertOptions(
        column_types={"geometry_id": pa.uint64()}))
