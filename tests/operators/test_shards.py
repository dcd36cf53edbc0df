"""Shard commit: webdataset tar + parquet index + stats, atomic, resumable."""

import io
import json
import os
import socket
import tarfile

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from multihowto.operators.shards import ShardCommit
from multihowto.pipeline.storage import LocalStorage
from multihowto.schemas.frames import pack_jpegs, unpack_jpegs
from multihowto.schemas.index import INDEX_SCHEMA
from multihowto.schemas.item import Clip, Failure, Track, VideoItem


def _items(tmp_path):
    scratch = tmp_path / "scratch-a"
    scratch.mkdir(exist_ok=True)
    blobs = [pack_jpegs([b"\xff\xd8a\xff\xd9", b"\xff\xd8b\xff\xd9"]), pack_jpegs([b"\xff\xd8c\xff\xd9"])]
    paths = []
    for i, blob in enumerate(blobs):
        paths.append(scratch / f"clip-{i}.frames.npz")
        paths[-1].write_bytes(blob)
    ok = VideoItem(
        video_id="vid-a",
        url="http://127.0.0.1/v/a.html",
        unit=3,
        pivot="en",
        tracks={"en": Track(cues=[], format="vtt", kind="manual"), "de": Track(cues=[], format="vtt", kind="manual", tag="de-DE")},
        lid={"en": {"verdict": "accept", "label": "en", "score": 0.9}, "de": {"verdict": "accept", "label": "de", "score": 0.8}},
        missing_langs={"sw": "no_track"},
        clips=[
            Clip(0, 0.0, 2.0, {"en": "bread", "de": "Brot"}, {"en": 1.0, "de": 0.9}, frames_path=str(paths[0]), n_frames=2),
            Clip(1, 2.0, 4.0, {"en": "water"}, {"en": 1.0}, frames_path=str(paths[1]), n_frames=1),
        ],
        timings={"frames": 0.5},
        retried=["http_429", "http_429"],
        download_attempts=3,
    )
    bad = VideoItem("vid-b", "", 3, failure=Failure("frames", "corrupt_video", "broken"))
    return [ok, bad]


def _commit(root, tmp_path):
    return ShardCommit(1.0, LocalStorage(root), tmp_path / "tmp")


def test_commit_writes_tar_index_and_stats(tmp_path):
    sc = _commit(tmp_path / "out", tmp_path)
    stats = sc.commit(3, _items(tmp_path))
    paths = {k: tmp_path / "out" / n for k, n in sc.names(3).items()}
    assert all(p.exists() for p in paths.values()) and sc.is_committed(3)
    samples = list(wds.WebDataset(str(paths["tar"]), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["vid-a_00000", "vid-a_00001"]
    assert samples[0]["de.txt"] == b"Brot" and "de.txt" not in samples[1]
    assert unpack_jpegs(samples[0]["frames.npz"]) == [b"\xff\xd8a\xff\xd9", b"\xff\xd8b\xff\xd9"]
    meta = json.loads(samples[0]["json"])
    assert meta["langs"] == ["en", "de"] and meta["frame_count"] == 2 and meta["lid"]["de"]["label"] == "de"
    assert meta["source"]["subtitle_tags"] == {"de": "de-DE"}
    table = pq.read_table(paths["index"])
    assert table.schema.equals(INDEX_SCHEMA)
    assert table.column("key").to_pylist() == ["vid-a_00000", "vid-a_00001"]
    # offsets point at the samples' bytes in the tar
    raw = paths["tar"].read_bytes()
    off, size = table.column("tar_offset")[1].as_py(), table.column("tar_size")[1].as_py()
    with tarfile.open(fileobj=io.BytesIO(raw[off : off + size])) as one:
        assert sorted(one.getnames()) == ["vid-a_00001.en.txt", "vid-a_00001.frames.npz", "vid-a_00001.json"]
    # the spans tile the archive in order, each exactly its own sample's members
    spans = list(zip(table.column("key").to_pylist(), table.column("tar_offset").to_pylist(), table.column("tar_size").to_pylist(),
                     strict=True))
    assert spans[0][1] == 0
    for (_, off, size), (_, nxt, _) in zip(spans, spans[1:], strict=False):
        assert off + size == nxt
    with tarfile.open(fileobj=io.BytesIO(raw)) as whole:
        members = whole.getmembers()
    end = members[-1].offset_data + (members[-1].size + 511) // 512 * 512
    assert spans[-1][1] + spans[-1][2] == end
    for key, off, size in spans:
        with tarfile.open(fileobj=io.BytesIO(raw[off : off + size])) as one:
            assert {n.split(".", 1)[0] for n in one.getnames()} == {key}
    assert stats["videos"] == {"total": 2, "ok": 1, "failed": 1}
    assert stats["failures"] == {"corrupt_video": 1}
    assert stats["retries"] == {"http_429": 2}
    assert [v["download_attempts"] for v in stats["per_video"]] == [3, 0]
    assert stats["per_video"][1]["reason"] == "corrupt_video" and stats["per_video"][1]["detail"] == "broken"
    assert stats["clips_per_lang"]["de"] == 1 and stats["missing_langs"] == {"sw": {"no_track": 1}}


def test_same_input_gives_identical_bytes(tmp_path):
    a, b = _commit(tmp_path / "a", tmp_path), _commit(tmp_path / "b", tmp_path)
    b.written_by = {"node": "n2"}  # who wrote it: in the stats only
    a.commit(0, _items(tmp_path))
    stats_b = b.commit(0, _items(tmp_path))
    for kind in ("tar", "index"):
        name = a.names(0)[kind]
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert stats_b["written_by"] == {"node": "n2", "host": socket.gethostname(), "pid": os.getpid()}


def test_crash_before_the_index_leaves_no_committed_shard(tmp_path, monkeypatch):
    sc = _commit(tmp_path / "out", tmp_path)
    real_replace = os.replace

    def crash_on_index(src, dst):
        if str(dst).endswith(".parquet"):
            raise OSError("disk gone")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_index)
    with pytest.raises(OSError):
        sc.commit(1, _items(tmp_path))
    monkeypatch.setattr(os, "replace", real_replace)
    assert not sc.is_committed(1)
    paths = {k: tmp_path / "out" / n for k, n in sc.names(1).items()}
    assert paths["tar"].exists()  # written but not committed
    sc.remove_partial(1)
    assert not any(p.exists() for p in paths.values())
    sc.commit(1, _items(tmp_path))
    assert sc.is_committed(1)


def test_a_unit_of_failed_videos_commits_an_empty_shard_that_reads_back(tmp_path):
    from multihowto.pipeline.inspect_dataset import inspect_dataset

    sc = _commit(tmp_path / "out", tmp_path)
    stats = sc.commit(0, [_items(tmp_path)[1]])
    assert sc.is_committed(0) and stats["clips"] == 0 and stats["failures"] == {"corrupt_video": 1}
    assert not (tmp_path / "out" / sc.names(0)["tar"]).exists()  # no sample: no tar, the index commits it
    sc.commit(1, _items(tmp_path))
    text = inspect_dataset(tmp_path / "out")
    # the same failed video in two units counts once, at its latest status
    assert "shards: 2" in text and "corrupt_video: 1" in text and "videos: 2 planned, 1 ok, 1 failed" in text
    assert "sample vid-a_00000" in text
