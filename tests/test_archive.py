"""Archives of results/: what goes in, and verification against the manifest."""

import datetime
import io
import json
import tarfile

import pytest

from hepclust.archive import MANIFEST, create_archive, verify_archive
from hepclust.cli import main
from hepclust.errors import InputError

WHEN = datetime.datetime(2026, 11, 23, 9, 30, 0)


@pytest.fixture
def run_dir(tmp_path):
    results = tmp_path / "results"
    (results / "jets").mkdir(parents=True)
    (results / "jets" / "metrics.json").write_text('{"ucluster_accuracy": 0.8}')
    (results / "report.html").write_text("<html></html>")
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    return tmp_path


def archive(run_dir):
    return create_archive(run_dir / "results", [run_dir / "config.yaml"],
                          run_dir / "archives", checkout=run_dir, when=WHEN)


def rewrite(path, change):
    """Copy the archive member by member, letting `change(name, data)` alter or drop one."""
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]
    with tarfile.open(path, "w:gz") as tar:
        for member, data in members:
            data = change(member.name, data)
            if data is not None:
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))


def test_the_archive_is_dated_and_holds_results_config_versions_and_manifest(run_dir):
    path = archive(run_dir)
    assert path.name == "hepclust-results-20261123-093000.tar.gz"
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile(MANIFEST))
        versions = json.load(tar.extractfile("versions.json"))
        revision = json.load(tar.extractfile("revision.json"))
    assert {"results/jets/metrics.json", "results/report.html", "config/1-config.yaml",
            "versions.json", "revision.json", MANIFEST} == names
    assert set(manifest) == names - {MANIFEST}
    assert manifest["config/1-config.yaml"]["bytes"] == len("seed: 1\n")
    assert "torch" in versions["packages"]
    assert versions["python"]
    assert revision["commit"] is None  # run_dir is no git checkout
    assert verify_archive(path) == []


def test_an_altered_member_is_named(run_dir):
    path = archive(run_dir)
    rewrite(path, lambda name, data: b'{"ucluster_accuracy": 0.99}'
            if name == "results/jets/metrics.json" else data)
    assert verify_archive(path) == [
        "results/jets/metrics.json: checksum differs from the manifest"]


def test_a_missing_or_extra_member_is_named(run_dir):
    path = archive(run_dir)
    rewrite(path, lambda name, data: None if name == "results/report.html" else data)
    assert verify_archive(path) == ["results/report.html: in the manifest but missing"]
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(path, "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data))
        extra = tarfile.TarInfo("results/extra.txt")
        extra.size = 2
        tar.addfile(extra, io.BytesIO(b"hi"))
    assert verify_archive(path) == ["results/extra.txt: not in the manifest",
                                    "results/report.html: in the manifest but missing"]


def test_a_truncated_archive_is_an_input_error(run_dir):
    path = archive(run_dir)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable archive"):
        verify_archive(path)


def test_the_commands_archive_and_verify(run_dir, monkeypatch, capsys):
    monkeypatch.chdir(run_dir)
    assert main(["archive"]) == 0
    path = next((run_dir / "archives").glob("hepclust-results-*.tar.gz"))
    assert main(["verify", str(path)]) == 0
    assert "every file matches" in capsys.readouterr().out
    rewrite(path, lambda name, data: data + b" " if name == "config/1-config.yaml" else data)
    with pytest.raises(SystemExit) as exit_status:
        main(["verify", str(path)])
    assert exit_status.value.code == 1
