"""The card's figures and the how2 export, computed shard by shard, against the whole
index read at once."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from multihowto.pipeline.how2 import export_how2
from multihowto.pipeline.summary import committed_shards, summarise
from multihowto.schemas.index import INDEX_SCHEMA
from multihowto.schemas.sample import LANGS

pytestmark = pytest.mark.slow


def read_index(root) -> pa.Table:
    """The reference: every committed shard's index read whole, as one table."""
    return pa.concat_tables([pq.read_table(root / n, schema=INDEX_SCHEMA) for n in committed_shards(root)])


def test_streamed_how2_export_equals_the_whole_index(built_dataset):
    _, out, _ = built_dataset
    rows = sorted(read_index(out).to_pylist(), key=lambda r: (r["video_id"], r["clip_index"]))
    export_how2(out)
    for lang in LANGS:
        want: dict = {}
        for r in rows:
            if r[f"text_{lang}"]:
                e = want.setdefault(r["video_id"], {"text": [], "start": [], "end": []})
                e["text"].append(r[f"text_{lang}"])
                e["start"].append(r["start"])
                e["end"].append(r["end"])
        assert json.loads((out / f"how2_{lang}.json").read_text(encoding="utf-8")) == want, lang
    assert not list(out.glob("*.tmp"))


def test_summary_counts_from_columns_match_the_index(built_dataset):
    _, out, _ = built_dataset
    table = read_index(out)
    s = summarise(out)
    assert s.videos_with_clips == len(set(table.column("video_id").to_pylist())) > 0
    assert sum(s.duration_counts) == table.num_rows == s.clips
    assert [(v.video_id, v.stage, v.reason) for v in s.failed_videos] == [("sample-05", "frames", "corrupt_video")]
    assert s.failed_videos[0].detail and s.failures == {"corrupt_video": 1}


def test_a_video_in_two_shards_is_refused(built_dataset, tmp_path):
    import shutil

    _, out, _ = built_dataset
    copy = tmp_path / "ds"
    shutil.copytree(out, copy)
    first = sorted(copy.glob("shard-*.parquet"))[0]
    shutil.copy(first, copy / "shard-000099.parquet")  # the same videos once more
    with pytest.raises(ValueError, match="already in an earlier shard"):
        export_how2(copy)
    assert not list(copy.glob("*.tmp")) and not list(copy.glob(".how2-*"))  # no scratch left
