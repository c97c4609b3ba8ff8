"""Recognise an input file's format and convert it to our Parquet tables.

`convert` streams the readers' chunks into the output, so a large input is never held
whole; the output appears only once complete (an earlier file of that name survives a
failure). A TrackML event gives two files: hits to the output path, particles beside it
as ``<output stem>-particles.parquet``, and a third, ``<output stem>-cells.parquet``,
where the event has cells. An output path that cannot be written (a directory, under a
file, in an unwritable place) is refused before anything is read.
"""

import os
from collections import Counter
from dataclasses import dataclass, field
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


@dataclass
class Conversion:
    """What `convert` did: `rows` written, and the events (jets for hls4ml, hits for
    TrackML) read but left out, counted by reason."""

    source: str
    output: str
    format: str
    rows: int
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def events_read(self) -> int:
        return self.rows + sum(self.dropped.values())

    def as_dict(self) -> dict:
        return {"source": self.source, "output": self.output, "format": self.format,
                "events_read": self.events_read, "rows": self.rows,
                "dropped": dict(self.dropped)}

    def report(self) -> str:
        """One line for the rows written, one per reason events were left out."""
        lines = [f"wrote {self.rows} rows to {self.output}"]
        lines += [f"dropped {count} of {self.events_read} events: {reason}"
                  for reason, count in self.dropped.items()]
        return "\n".join(lines)


def check_output(output: str | Path) -> None:
    """Refuse an output path that cannot be written, naming it and why."""
    output = Path(output)
    if output.is_dir():
        raise InputError(output, "is a directory; give the path of the Parquet file to write")
    existing = next(p for p in (output.parent.absolute(), *output.parent.absolute().parents)
                    if p.exists())
    if not existing.is_dir():
        raise InputError(output, f"cannot be written: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(output, f"cannot be written: no permission to write in {existing}")


def convert(source: str | Path, output: str | Path, format: str | None = None,
            max_events: int | None = None) -> Conversion:
    """Convert `source` to Parquet at `output`; returns what was written and left out.

    `max_events` limits the events (jets for hls4ml) read; it does not apply to TrackML,
    whose files are one event each.
    """
    source, output = Path(source), Path(output)
    check_output(output)
    if format == "trackml" or (format is None and EVENT_FILE.fullmatch(source.name)):
        check_output(particles_path(output))
    format = format or detect_format(source)
    if max_events is not None and max_events < 1:
        raise InputError(source, f"max_events must be at least 1, not {max_events}")
    if format not in FORMATS:
        raise InputError(source, f"unknown format {format!r}; known: {', '.join(FORMATS)}")
    dropped = Counter()
    try:
        if format == "trackml":
            hits, particles = read_trackml_event(source)
            cells = read_trackml_cells(source)
            with atomic_path(output) as hits_tmp, \
                    atomic_path(particles_path(output)) as parts_tmp:
                write_table(hits, hits_tmp, TRACKML_HITS, source)
                write_table(particles, parts_tmp, TRACKML_PARTICLES, source)
                if cells is not None:
                    write_table(cells, cells_path(output), TRACKML_CELLS, source)
            rows = hits.num_rows
        else:
            reader, schema = CHUNKED_READERS[format]
            chunks = iter_lhco(source, max_events, dropped=dropped) if format == "lhco" \
                else reader(source, max_events)
            rows = write_chunks(chunks, output, schema, source)
    except OSError as err:  # the readers turn their own into InputError: this is the output
        raise InputError(output, f"cannot be written ({err})") from err
    return Conversion(str(source), str(output), format, rows, dict(dropped))

