"""``how2_{lang}.json``: the clips' texts in the released Multi-HowTo100M caption format,
``{video_id: {"text": [...], "start": [...], "end": [...]}}``, one file per language.

Written shard by shard from the indexes' text columns (a video's clips all lie in one
shard: units hold whole videos, and a retry unit only takes videos that gave no clips),
into local temporary files that are then put into the dataset's storage whole.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

from multihowto.pipeline.storage import LocalStorage, as_storage
from multihowto.pipeline.summary import committed_shards, read_index
from multihowto.schemas.index import how2_file
from multihowto.schemas.sample import LANGS


def export_how2(storage) -> list[str]:
    """Write every language's how2 file into ``storage`` (a Storage or a path); returns
    their names. A video found in two shards is a ValueError naming the shard."""
    storage = as_storage(storage)
    columns = ["video_id", "clip_index", "start", "end", *(f"text_{lang}" for lang in LANGS)]
    # Next to a local dataset, so that committing each file is a rename.
    scratch = storage.root if isinstance(storage, LocalStorage) else None
    with tempfile.TemporaryDirectory(prefix=".how2-", dir=scratch) as tmp_dir:
        tmp = {lang: Path(tmp_dir) / how2_file(lang) for lang in LANGS}
        files = {lang: open(path, "w", encoding="utf-8") for lang, path in tmp.items()}
        try:
            _write(storage, columns, files)
        finally:
            for f in files.values():
                f.close()
        for lang in LANGS:
            storage.put_file(tmp[lang], how2_file(lang))
    return [how2_file(lang) for lang in LANGS]


def _write(storage, columns: list[str], files: dict) -> None:
    first = dict.fromkeys(LANGS, True)
    seen: set[str] = set()
    for f in files.values():
        f.write("{")
    for index_name in committed_shards(storage):
        rows = read_index(storage, index_name, columns).to_pylist()
        rows.sort(key=lambda r: (r["video_id"], r["clip_index"]))
        by_video: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by_video[r["video_id"]].append(r)
        if seen & by_video.keys():
            raise ValueError(f"{index_name}: videos already in an earlier shard: {sorted(seen & by_video.keys())[:5]}")
        seen.update(by_video)
        for vid, clips in by_video.items():
            for lang in LANGS:
                kept = [r for r in clips if r[f"text_{lang}"]]
                if not kept:
                    continue
                entry = {"text": [r[f"text_{lang}"] for r in kept], "start": [r["start"] for r in kept], "end": [r["end"] for r in kept]}
                files[lang].write(("" if first[lang] else ", ") + json.dumps(vid) + ": " + json.dumps(entry, ensure_ascii=False))
                first[lang] = False
    for f in files.values():
        f.write("}")
