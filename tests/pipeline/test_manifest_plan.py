import dataclasses
import json

import pytest

from multihowto.pipeline.manifest import read_manifest
from multihowto.pipeline.plan import PlanMismatch, make_plan
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


def _manifest(tmp_path, n):
    p = tmp_path / f"m{n}.csv"
    p.write_text("video_id,url\n" + "".join(f"v{i:03d},http://127.0.0.1/v/v{i:03d}.html\n" for i in range(n)))
    return read_manifest(p, YT)


def test_plan_is_deterministic_and_reused(tmp_path):
    cfg = RegionConfig(videos_per_unit=4)
    out = tmp_path / "out"
    a = make_plan(_manifest(tmp_path, 20), cfg, out)
    assert a.n_videos == 20 and [len(v) for v in a.units.values()] == [4] * 5
    saved = json.loads((out / "_plan.json").read_text())
    b = make_plan(_manifest(tmp_path, 20), cfg, out)
    assert a.units == b.units and saved["n_units"] == 5
    with pytest.raises(PlanMismatch):
        make_plan(_manifest(tmp_path, 21), cfg, out)


def test_region_partitions_split_the_manifest(tmp_path):
    owned = []
    for i in range(3):
        cfg = dataclasses.replace(RegionConfig(), partition=f"{i}/3")
        plan = make_plan(_manifest(tmp_path, 30), cfg, tmp_path / f"out{i}")
        owned.append({r["video_id"] for rows in plan.units.values() for r in rows})
    assert sum(len(o) for o in owned) == 30
    assert set.union(*owned) == {f"v{i:03d}" for i in range(30)}
    assert all(o for o in owned)
