"""Recognise an input file's format and convert it to our Parquet tables.

`convert` streams the readers' chunks into the output, so a large input is never held
whole; the output appears only once complete (an earlier file of that name survives a
failure). A TrackML event gives two files: hits to the output path, particles beside it
as ``<output stem>-particles.parquet``, and a third, ``<output stem>-cells.parquet``,
where the event has cells.
"""

from pathlib import Path

from hepclust.errors import InputError
from hepclust.io import hdf5
from hepclust.io.delphes import iter_delphes
from hepclust.io.hls4ml import iter_hls4ml
from hepclust.io.lhco import iter_lhco
from hepclust.io.parquet import atomic_path, write_chunks, write_table
from hepclust.io.schema import DIJETS, JETS, PARTICLES, TRACKML_HITS, TRACKML_PARTICLES
from hepclust.io.trackml import EVENT_FILE, read_trackml_cells, read_trackml_event
from hepclust.io.trackml_cells import TRACKML_CELLS

FORMATS = ("hls4ml", "lhco", "trackml", "delphes")
# Chunked reader (taking the path and a maximum number of events) and output schema.
CHUNKED_READERS = {"hls4ml": (iter_hls4ml, JETS), "lhco": (iter_lhco, DIJETS),
                   "delphes": (iter_delphes, PARTICLES)}
ROOT_MAGIC = b"root"


def detect_format(path: str | Path) -> str:
    """The format of `path`, from its name (TrackML) or its first bytes and content."""
    path = Path(path)
    if EVENT_FILE.fullmatch(path.name):
        return "trackml"
    if not path.is_file():
        raise InputError(path, "no such file")
    with path.open("rb") as handle:
        head = handle.read(len(hdf5.SIGNATURE))
    if head.startswith(ROOT_MAGIC):
        return "delphes"
    if head == hdf5.SIGNATURE:
        with hdf5.open_hdf5(path) as handle:
            if "jetConstituentList" in handle:
                return "hls4ml"
            if "df" in handle:
                return "lhco"
        raise InputError(path, "an HDF5 file with neither jetConstituentList (hls4ml) nor "
                               "df (LHC Olympics)")
    raise InputError(path, f"unknown format; known: {', '.join(FORMATS)} (HDF5, ROOT, or "
                           "TrackML event<digits>-hits/truth/particles.csv[.gz])")


def particles_path(output: str | Path) -> Path:
    """Where the particles of a TrackML event go, beside its hits at `output`."""
    output = Path(output)
    return output.with_name(f"{output.stem}-particles{output.suffix}")


def cells_path(output: str | Path) -> Path:
    """Where the cells of a TrackML event go, beside its hits at `output`."""
    output = Path(output)
    return output.with_name(f"{output.stem}-cells{output.suffix}")


def convert(source: str | Path, output: str | Path, format: str | None = None,
            max_events: int | None = None) -> int:
    """Convert `source` to Parquet at `output`; returns the number of rows written.

    `max_events` limits the events (jets for hls4ml) read; it does not apply to TrackML,
    whose files are one event each.
    """
    source = Path(source)
    format = format or detect_format(source)
    if max_events is not None and max_events < 1:
        raise InputError(source, f"max_events must be at least 1, not {max_events}")
    if format == "trackml":
        hits, particles = read_trackml_event(source)
        cells = read_trackml_cells(source)
        with atomic_path(output) as hits_tmp, atomic_path(particles_path(output)) as parts_tmp:
            write_table(hits, hits_tmp, TRACKML_HITS, source)
            write_table(particles, parts_tmp, TRACKML_PARTICLES, source)
            if cells is not None:
                write_table(cells, cells_path(output), TRACKML_CELLS, source)
        return hits.num_rows
    if format not in CHUNKED_READERS:
        raise InputError(source, f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    reader, schema = CHUNKED_READERS[format]
    return write_chunks(reader(source, max_events), output, schema, source)

