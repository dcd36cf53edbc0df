"""The soak in small (one run, three faults) ends clean, and its checker catches what a
broken run would leave: an unindexed tar, a key twice, a missing unit, a good video
gone bad, a rejected row not recorded."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

from bench.soak import main as soak_main
from bench.soak_check import check_dataset
from bench.soak_faults import Expect, RunTruth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def soaked(tmp_path_factory):
    work = tmp_path_factory.mktemp("soak")
    rc = soak_main(["--runs", "1", "--seed", "3", "--site-videos", "3", "--only", "http_429,corrupt_mp4,duplicate_row",
                    "--video-faults", "2", "--manifest-faults", "1", "--workdir", str(work), "--keep"])
    run = work / "run-000"
    return rc, run / "out", RunTruth.from_json(json.loads((run / "truth.json").read_text()))


def _copy(out, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    return copy


def test_small_soak_is_clean(soaked):
    rc, out, truth = soaked
    assert rc == 0
    assert len(truth.faults) == 3 and truth.rejected == ["duplicate_video_id"]
    assert check_dataset(out, truth) == []


def test_checker_catches_an_unindexed_tar(soaked, tmp_path):
    _, out, truth = soaked
    out = _copy(out, tmp_path)
    index = next(p for p in sorted(out.glob("shard-*.parquet")) if p.with_suffix(".tar").exists())
    index.unlink()
    found = check_dataset(out, truth)
    assert any("a tar without its index" in v for v in found)
    assert any("not committed" in v for v in found)


def test_checker_catches_a_key_twice(soaked, tmp_path):
    _, out, truth = soaked
    out = _copy(out, tmp_path)
    src = next(p for p in sorted(out.glob("shard-*.parquet")) if p.with_suffix(".tar").exists())
    for suffix in (".tar", ".parquet", ".stats.json"):
        shutil.copyfile(src.with_suffix(suffix) if suffix != ".stats.json" else src.with_name(src.stem + suffix),
                        out / f"shard-000099{suffix}")
    found = check_dataset(out, truth)
    key = pq.read_table(src, columns=["key"]).column("key")[0].as_py()
    assert f"key {key} indexed 2 times" in found
    assert any("a unit the plan does not have" in v for v in found)
    assert any("2 per_video entries" in v for v in found)


def test_checker_catches_a_wrong_outcome_and_a_lost_rejection(soaked):
    _, out, truth = soaked
    good = next(v for v, e in truth.expect.items() if e.ok)
    changed = RunTruth(expect={**truth.expect, good: Expect(False, ("http_404",))}, cues=truth.cues,
                       rejected=[*truth.rejected, "malformed_url"])
    found = check_dataset(out, changed)
    assert any(v.startswith(f"{good}: expected to fail") for v in found)
    assert any("_plan_rejected.parquet: rejected rows" in v for v in found)
    fewer = RunTruth(expect=truth.expect, cues={**truth.cues, good: truth.cues[good] + 1}, rejected=truth.rejected)
    assert any(v.startswith(f"{good}: expected clips") for v in check_dataset(out, fewer))
