import dataclasses
import json

import pytest

from multihowto.pipeline.manifest import read_manifest
from multihowto.pipeline.plan import PlanMismatch, make_plan, read_rejected, read_unit_rows
from multihowto.pipeline.storage import LocalStorage
from multihowto.schemas.config import RegionConfig

YT = "https://www.youtube.com/watch?v={id}"


def test_howto100m_csv(tmp_path):
    p = tmp_path / "HowTo100M_v1.csv"
    p.write_text(
        "video_id,category_1,category_2,rank,task_id\n"
        "nVbIUDjzWY4,Cars & Other Vehicles,Motorcycles,27,52907\n"
        "CTPAZ2euJ2Q,Cars & Other Vehicles,Motorcycles,35,109057\n"
        "bad id!,x,y,1,2\n"
        "nVbIUDjzWY4,dup,dup,1,2\n"
        ",,,,\n"
    )
    m = read_manifest(p, YT)
    assert [r["video_id"] for r in m.rows] == ["nVbIUDjzWY4", "CTPAZ2euJ2Q"]
    assert m.rows[0]["url"] == "https://www.youtube.com/watch?v=nVbIUDjzWY4"
    assert [(r["line"], r["reason"]) for r in m.rejected] == [(4, "malformed_video_id"), (5, "duplicate_video_id"), (6, "empty_row")]


def test_text_list_of_urls(tmp_path):
    p = tmp_path / "list.txt"
    p.write_text("# comment\nhttps://www.youtube.com/watch?v=nVbIUDjzWY4\nftp://example.org/x.mp4\nhttp://127.0.0.1:8000/v/a.b.html\n")
    m = read_manifest(p, YT)
    assert [r["video_id"] for r in m.rows][0] == "nVbIUDjzWY4"
    assert "." not in m.rows[1]["video_id"]
    assert m.rejected[0]["reason"] == "unsupported_url_scheme"


def _manifest(tmp_path, n, extra=""):
    p = tmp_path / f"m{n}.csv"
    p.write_text("video_id,url\n" + "".join(f"v{i:03d},http://127.0.0.1/v/v{i:03d}.html\n" for i in range(n)) + extra)
    return p


def _units(storage, plan):
    return {t.unit: [vid for vid, _ in read_unit_rows(storage, t)] for t in plan.tasks()}


def test_plan_is_deterministic_and_reused(tmp_path):
    cfg = RegionConfig(videos_per_unit=4)
    out = LocalStorage(tmp_path / "out")
    a = make_plan(_manifest(tmp_path, 20), cfg, out)
    assert a.n_videos == 20 and [len(v) for v in _units(out, a).values()] == [4] * 5
    saved = json.loads((tmp_path / "out" / "_plan.json").read_text())
    b = make_plan(_manifest(tmp_path, 20), cfg, out)
    assert _units(out, a) == _units(out, b) and saved["n_units"] == 5
    assert sorted(v for vs in _units(out, a).values() for v in vs) == [f"v{i:03d}" for i in range(20)]
    with pytest.raises(PlanMismatch):
        make_plan(_manifest(tmp_path, 21), cfg, out)


def test_duplicates_and_bad_rows_are_rejected_with_their_lines(tmp_path):
    out = LocalStorage(tmp_path / "out")
    plan = make_plan(_manifest(tmp_path, 5, "v001,http://127.0.0.1/v/again.html\n,\n"), RegionConfig(), out)
    assert plan.n_videos == 5 and plan.n_rejected == 2
    assert [(r["line"], r["reason"]) for r in read_rejected(out)] == [(7, "duplicate_video_id"), (8, "empty_row")]
    rows = dict(v for t in plan.tasks() for v in read_unit_rows(out, t))
    assert rows["v001"] == "http://127.0.0.1/v/v001.html"  # the first row of an id wins


def test_a_unit_reads_only_its_own_rows(tmp_path):
    out = LocalStorage(tmp_path / "out")
    plan = make_plan(_manifest(tmp_path, 50), RegionConfig(videos_per_unit=7), out)
    tasks = plan.tasks()
    assert [t.stop - t.start for t in tasks] == [7] * 7 + [1]
    seen = [v for t in tasks for v, _ in read_unit_rows(out, t)]
    assert len(seen) == len(set(seen)) == 50


def test_region_partitions_split_the_manifest(tmp_path):
    owned = []
    for i in range(3):
        cfg = dataclasses.replace(RegionConfig(), partition=f"{i}/3")
        out = LocalStorage(tmp_path / f"out{i}")
        plan = make_plan(_manifest(tmp_path, 30), cfg, out)
        owned.append({v for vs in _units(out, plan).values() for v in vs})
    assert sum(len(o) for o in owned) == 30
    assert set.union(*owned) == {f"v{i:03d}" for i in range(30)}
    assert all(o for o in owned)
