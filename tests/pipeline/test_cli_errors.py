"""`mhowto dataset` with a bad manifest or region profile: one `error:` line naming the
file, exit status 2, no traceback, and nothing created."""

import subprocess
import sys

import pytest

from multihowto.pipeline.cli import main


def _profile(tmp_path, manifest) -> str:
    p = tmp_path / "region.yaml"
    p.write_text(f"source:\n  kind: manifest\n  manifest: '{manifest}'\noutput: '{tmp_path / 'out'}'\n", encoding="utf-8")
    return str(p)


def _refused(tmp_path, capsys, argv, names: str, problem: str) -> None:
    before = sorted(tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {names}: ") and problem in err
    assert "Traceback" not in err
    assert sorted(tmp_path.iterdir()) == before and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("missing.csv", None, "no such manifest file"),
        ("binary.csv", bytes(range(256)) * 8, "a binary file"),
        ("noid.csv", b"id,link\n1,2\n", "no 'video_id' or 'url' column"),
        ("table.parquet", b"not parquet at all", "not a parquet file"),
    ],
)
def test_a_bad_manifest_is_one_line_and_creates_nothing(tmp_path, capsys, name, content, problem):
    manifest = tmp_path / name
    if content is not None:
        manifest.write_bytes(content)
    profile = _profile(tmp_path, manifest)
    _refused(tmp_path, capsys, ["dataset", "--profile", profile], str(manifest), problem)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"\x00\x01\x02binary\xff\xfe" * 10, "a binary file"),
        ("name: caf\u00e9\n".encode("cp1252"), "not UTF-8 text"),
        (b"frames:\n  fps: .nan\n", "frames.fps: must be a finite number"),
        (b"a: &a [1]\nb: *a\n", "YAML aliases (*name) are not allowed"),
    ],
)
def test_a_bad_region_profile_is_one_line_and_creates_nothing(tmp_path, capsys, content, problem):
    profile = tmp_path / "region.yaml"
    profile.write_bytes(content)
    _refused(tmp_path, capsys, ["dataset", "--profile", str(profile)], str(profile), problem)


def test_the_installed_command_prints_no_traceback(tmp_path):
    manifest = tmp_path / "binary.csv"
    manifest.write_bytes(bytes(range(256)) * 8)
    proc = subprocess.run([sys.executable, "-m", "multihowto.pipeline.cli", "dataset", "--profile", _profile(tmp_path, manifest)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {manifest}: a binary file, not a text manifest (NUL bytes; UTF-16 needs a byte-order mark)\n"
    assert not (tmp_path / "out").exists()
