"""The README's reading snippet works on every dataset the pipeline can produce,
including one where a unit's videos all failed (its index and stats commit it, no tar)."""

import re
from io import BytesIO
from pathlib import Path

from PIL import Image

from multihowto.operators.shards import ShardCommit
from multihowto.pipeline.storage import LocalStorage
from multihowto.schemas.frames import pack_jpegs
from multihowto.schemas.item import Clip, Failure, VideoItem

README = Path(__file__).resolve().parents[1] / "README.md"


def reading_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [snippet] = [b for b in blocks if "wds.WebDataset" in b]
    return snippet


def run_snippet(root: Path) -> list[dict]:
    seen: list[dict] = []
    code = reading_snippet().replace("data/local", str(root))
    code += "\n    seen.append({'meta': meta, 'frames': frames.shape, 'texts': texts})\n"
    exec(compile(code, "README.md", "exec"), {"seen": seen})
    return seen


def test_the_readme_snippet_reads_a_dataset_with_an_empty_unit(tmp_path):
    root = tmp_path / "ds"
    commit = ShardCommit(1.0, LocalStorage(root), tmp_path / "tmp")
    commit.commit(0, [VideoItem("bad", "", 0, failure=Failure("frames", "corrupt_video"))])  # no tar
    frames = tmp_path / "f.npz"
    buf = BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "JPEG")
    frames.write_bytes(pack_jpegs([buf.getvalue()]))
    good = VideoItem("good", "", 1, pivot="en",
                     clips=[Clip(0, 0.0, 1.0, {"en": "bread", "de": "Brot"}, {"en": 1.0, "de": 1.0}, str(frames), 1)])
    commit.commit(1, [good])
    assert not (root / "shard-000000.tar").exists() and (root / "shard-000000.parquet").exists()
    seen = run_snippet(root)
    assert [s["meta"]["key"] for s in seen] == ["good_00000"]
    assert seen[0]["frames"] == (1, 8, 8, 3) and seen[0]["texts"] == {"en": "bread", "de": "Brot"}


def test_the_readme_snippet_reads_a_dataset_where_every_video_failed(tmp_path):
    root = tmp_path / "ds"
    ShardCommit(1.0, LocalStorage(root), tmp_path / "tmp").commit(0, [VideoItem("bad", "", 0, failure=Failure("frames", "x"))])
    assert run_snippet(root) == []
