"""The ``hepclust`` command: one-off runs of single steps, outside the workflow.

Each subcommand is one ``_add_<name>`` function that declares its arguments and one
``_<name>`` function that runs it. Bad input ends with ``hepclust: error: <message>``
on stderr and exit status 2, as argparse does for a bad command line.
"""

import argparse
from collections.abc import Sequence

from hepclust import __version__
from hepclust.errors import InputError
from hepclust.io.formats import FORMATS, convert


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hepclust", description="Machine-learning clustering for particle physics.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_convert(commands)
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
    rows = convert(args.input, args.output, format=args.format, max_events=args.max_events)
    print(f"wrote {rows} rows to {args.output}")
