"""The ``hepclust`` command: one-off runs of single steps, outside the workflow.

Each subcommand is one ``_add_<name>`` function that declares its arguments and one
``_<name>`` function that runs it. Bad input ends with ``hepclust: error: <message>``
on stderr and exit status 2, as argparse does for a bad command line.
"""

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv

from hepclust import __version__
from hepclust.archive import create_archive, verify_archive
from hepclust.errors import InputError
from hepclust.io.formats import FORMATS, convert, particles_path
from hepclust.io.parquet import atomic_path, read_table
from hepclust.io.schema import TRACKML_HITS, TRACKML_PARTICLES
from hepclust.io.trackml import event_number, has_truth, read_trackml_event, read_trackml_hits
from hepclust.tracking.score import score_event, tracking_metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hepclust", description="Machine-learning clustering for particle physics.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(commands)
    _add_score(commands)
    _add_track(commands)
    _add_archive(commands)
    _add_verify(commands)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except InputError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _add_convert(commands) -> None:
    command = commands.add_parser(
        "convert", help="convert a real data file to the Parquet tables",
        description="Convert an hls4ml or LHC Olympics HDF5 file, a TrackML event or a "
                    "Delphes ROOT file to Parquet (see docs/data.md). A TrackML event's "
                    "particles go beside OUTPUT as <stem>-particles.parquet.")
    command.add_argument("input", help="the file to convert (for TrackML, any file of the "
                                       "event, or its event<digits> prefix)")
    command.add_argument("output", help="the Parquet file to write")
    command.add_argument("--format", choices=FORMATS,
                         help="the input's format (default: recognised from the file)")
    command.add_argument("--max-events", type=_positive, metavar="N",
                         help="read at most N events (jets for hls4ml)")
    command.set_defaults(run=_convert)


def _convert(args: argparse.Namespace) -> None:
    print(convert(args.input, args.output, format=args.format,
                  max_events=args.max_events).report())


def _add_score(commands) -> None:
    command = commands.add_parser(
        "score", help="score a TrackML submission against its event",
        description="Print the TrackML score of a submission (hit_id, track_id and "
                    "optionally event_id columns) and, when the event's particles are at "
                    "hand, the efficiency, fake rate and duplicate rate.")
    command.add_argument("submission", help="the submission CSV file")
    command.add_argument("event", help="the TrackML event (any of its CSV files or its "
                                       "event<digits> prefix), or a hits Parquet file with "
                                       "its <stem>-particles.parquet beside it")
    command.add_argument("--min-hits", type=_positive, default=4, metavar="N",
                         help="particles with at least N hits count for the efficiency "
                              "(default: 4)")
    command.add_argument("--min-track-hits", type=_positive, default=3, metavar="N",
                         help="tracks with at least N hits count for the fake and "
                              "duplicate rates (default: 3)")
    command.set_defaults(run=_score)


def _score(args: argparse.Namespace) -> None:
    event = Path(args.event)
    hits, particles, number = _read_scored_event(event)
    if not hits["weight"].to_numpy().sum(dtype=np.float64) > 0:
        raise InputError(event, "no hit has weight: nothing to score")
    submission = _read_submission(Path(args.submission), number)
    print(f"score: {score_event(hits, submission, source=args.submission):.6f}")
    if particles is None:
        return
    metrics = tracking_metrics(hits, particles, submission, min_hits=args.min_hits,
                               min_track_hits=args.min_track_hits, source=args.submission)
    for name, rate, count, total, what in (
            ("efficiency", "efficiency", "matched_particles", "particles",
             f"particles with at least {args.min_hits} hits"),
            ("fake rate", "fake_rate", "fake_tracks", "tracks",
             f"tracks with at least {args.min_track_hits} hits"),
            ("duplicate rate", "duplicate_rate", "duplicate_tracks", "pure_tracks",
             "tracks with a majority particle")):
        value = "n/a" if metrics[rate] is None else f"{metrics[rate]:.6f}"
        print(f"{name}: {value} ({metrics[count]} of {metrics[total]} {what})")


def _add_track(commands) -> None:
    command = commands.add_parser(
        "track", help="find the tracks of a TrackML event with trained models",
        description="Reconstruct the tracks of EVENT (a TrackML event, with or without "
                    "truth, or a hits Parquet file) with the clustering GNN trained by the "
                    "workflow, write them as a TrackML submission and, where the event has "
                    "truth, print its score.")
    command.add_argument("models", help="the trained models (results/tracking/models)")
    command.add_argument("event", help="the TrackML event (any of its CSV files or its "
                                       "event<digits> prefix), or a hits Parquet file")
    command.add_argument("-o", "--output", required=True, help="the submission CSV to write")
    command.add_argument("--config", default="config.yaml",
                         help="the config that trained the models (default: config.yaml)")
    command.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    command.set_defaults(run=_track)


def _track(args: argparse.Namespace) -> None:
    from hepclust.tracking.track_event import submission_table, track_hits, tracking_config

    event = Path(args.event)
    config = tracking_config(args.config)
    if event.suffix != ".parquet" and not has_truth(event):
        hits, particles, number = read_trackml_hits(event), None, event_number(event)
    else:
        hits, particles, number = _read_scored_event(event)
    track_id = track_hits(hits, args.models, config, args.device, event)
    submission = submission_table(hits["hit_id"].to_numpy(), track_id, number)
    with atomic_path(args.output) as tmp:
        submission.to_csv(tmp, index=False)
    print(f"wrote {submission['track_id'].nunique()} tracks of {len(submission)} hits "
          f"to {args.output}")
    if hits["weight"].to_numpy().sum(dtype=np.float64) > 0:
        print(f"score: {score_event(hits, submission, source=args.output):.6f}")
        if particles is not None:
            metrics = tracking_metrics(hits, particles, submission, source=args.output)
            print(f"efficiency: {metrics['efficiency']:.6f}")


def _add_archive(commands) -> None:
    command = commands.add_parser(
        "archive", help="pack results/ into a dated archive with a checksum manifest",
        description="Pack every file under RESULTS, the config files, the software versions "
                    "and the git revision into OUTPUT_DIR/hepclust-results-<date>.tar.gz, "
                    "with a manifest of SHA-256 checksums (check it with `hepclust verify`).")
    command.add_argument("--results", default="results", help="default: results")
    command.add_argument("--config", action="append", default=None, metavar="FILE",
                         help="a config file the run used (repeatable; default: config.yaml)")
    command.add_argument("--output-dir", default="archives", help="default: archives")
    command.set_defaults(run=_archive)


def _archive(args: argparse.Namespace) -> None:
    path = create_archive(args.results, args.config or ["config.yaml"], args.output_dir)
    print(f"wrote {path}")


def _add_verify(commands) -> None:
    command = commands.add_parser(
        "verify", help="check an archive against its manifest",
        description="Check every member of a `hepclust archive` file against the SHA-256 "
                    "manifest inside it; exit status 1 if anything is missing or altered.")
    command.add_argument("archive")
    command.set_defaults(run=_verify)


def _verify(args: argparse.Namespace) -> None:
    problems = verify_archive(args.archive)
    for problem in problems:
        print(problem)
    if problems:
        raise SystemExit(1)
    print(f"{args.archive}: every file matches the manifest")


def _read_scored_event(event: Path) -> tuple[pa.Table, pa.Table | None, int | None]:
    """(hits, particles or None, event number or None) of the event to score against."""
    if event.suffix != ".parquet":
        return *read_trackml_event(event), event_number(event)
    hits = read_table(event, TRACKML_HITS)
    numbers = pc.unique(hits["event_id"]).to_pylist() if "event_id" in hits.column_names else []
    if len(numbers) > 1:
        raise InputError(event, f"holds {len(numbers)} events; score one event at a time")
    particles = particles_path(event)
    particles = read_table(particles, TRACKML_PARTICLES) if particles.is_file() else None
    return hits, particles, numbers[0] if numbers else None


def _read_submission(path: Path, number: int | None) -> pa.Table:
    """The submission's rows for event `number` (or its only event, if None)."""
    if not path.is_file():
        raise InputError(path, "no such file")
    types = {name: pa.int64() for name in ("event_id", "hit_id", "track_id")}
    try:
        table = csv.read_csv(path, convert_options=csv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, OSError) as err:
        raise InputError(path, f"not a readable submission CSV file ({err})") from err
    if "event_id" not in table.column_names:
        return table
    if table["event_id"].null_count:
        raise InputError(path, "column event_id has empty values")
    events = sorted(pc.unique(table["event_id"]).to_pylist())
    if number is None and len(events) > 1:
        raise InputError(path, f"holds {len(events)} events; name the event as "
                               "event<digits> to choose one")
    if number is not None and number not in events:
        raise InputError(path, f"has no rows for event {number} (it holds event(s) "
                               f"{', '.join(map(str, events[:5]))})")
    return table if len(events) == 1 else table.filter(pc.equal(table["event_id"], number))
