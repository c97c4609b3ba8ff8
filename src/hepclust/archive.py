"""Dated, self-describing archives of a run's ``results/``, and their verification.

An archive is a gzipped tar holding ``results/...`` as they were, the config files the run
used (``config/<n>-<name>``, numbered in the order they were applied), ``versions.json``
(Python, platform, every installed distribution), ``revision.json`` (the git commit and
whether the tree had local changes) and ``MANIFEST.json``: the SHA-256 and size of every
other member.
"""

import datetime
import hashlib
import io
import json
import platform
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

from hepclust.errors import InputError
from hepclust.io.parquet import atomic_path

MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 20


def software_versions() -> dict:
    """The interpreter, the platform and the version of every installed distribution."""
    packages = {dist.metadata["Name"]: dist.version for dist in metadata.distributions()
                if dist.metadata["Name"]}
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "packages": dict(sorted(packages.items(), key=lambda item: item[0].lower()))}


def git_revision(directory: str | Path) -> dict:
    """The commit checked out in `directory`, and whether tracked files differ from it."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                                  text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "local_changes": bool(changes) if commit else None}


def _sha256(stream) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(_CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def archive_name(when: datetime.datetime) -> str:
    return f"hepclust-results-{when:%Y%m%d-%H%M%S}.tar.gz"


def create_archive(results: str | Path, configs: list[str | Path], output_dir: str | Path,
                   checkout: str | Path = ".", when: datetime.datetime | None = None) -> Path:
    """Pack `results` (every regular file below it), the `configs`, the software versions
    and the git revision of `checkout` into ``output_dir/hepclust-results-<date>.tar.gz``.
    The archive appears only once complete."""
    results = Path(results)
    if not results.is_dir():
        raise InputError(results, "no results directory to archive")
    when = when or datetime.datetime.now()
    stamp = when.timestamp()
    files = [(f"results/{path.relative_to(results).as_posix()}", path)
             for path in sorted(results.rglob("*")) if path.is_file() and not path.is_symlink()]
    unique_configs = list(dict.fromkeys(Path(config).resolve() for config in configs))
    for order, config in enumerate(unique_configs, start=1):
        if not config.is_file():
            raise InputError(config, "config file not found")
        files.append((f"config/{order}-{config.name}", config))
    generated = {
        "versions.json": software_versions(),
        "revision.json": {**git_revision(checkout), "archived_at": when.isoformat()},
    }
    manifest = {}
    target = Path(output_dir) / archive_name(when)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for name, path in files:
            with path.open("rb") as stream:
                manifest[name] = {"sha256": _sha256(stream), "bytes": path.stat().st_size}
            tar.add(path, arcname=name, recursive=False)
        for name, content in generated.items():
            data = json.dumps(content, indent=1).encode()
            manifest[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            _add_bytes(tar, name, data, stamp)
        _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode(), stamp)
    return target


def verify_archive(path: str | Path) -> list[str]:
    """The problems found checking the archive against its manifest: missing, altered or
    unlisted members. An empty list means the archive is intact."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            try:
                manifest = json.load(tar.extractfile(MANIFEST))
            except KeyError:
                raise InputError(path, f"no {MANIFEST} in the archive") from None
            problems, seen = [], set()
            for member in tar:
                if member.name == MANIFEST or not member.isfile():
                    continue
                seen.add(member.name)
                expected = manifest.get(member.name)
                if expected is None:
                    problems.append(f"{member.name}: not in the manifest")
                elif _sha256(tar.extractfile(member)) != expected["sha256"]:
                    problems.append(f"{member.name}: checksum differs from the manifest")
    except (tarfile.TarError, EOFError, OSError, json.JSONDecodeError) as err:
        raise InputError(path, f"not a readable archive ({err})") from err
    problems += [f"{name}: in the manifest but missing" for name in manifest.keys() - seen]
    return problems
