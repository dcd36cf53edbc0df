"""Read a manifest into ``(video_id, url)`` rows; bad rows are kept with a reason.

Accepted inputs:
- HowTo100M's CSV (``video_id,category_1,category_2,rank,task_id``): URLs from
  ``url_template``;
- a CSV with ``video_id,url`` or just ``url``;
- parquet with the same columns;
- a text file, one URL or id per line (``#`` comments).
"""

from __future__ import annotations

import csv
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from multihowto.schemas.sample import sanitize_id

_YT_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


@dataclass
class Manifest:
    rows: list[dict] = field(default_factory=list)  # {"video_id", "url"}
    rejected: list[dict] = field(default_factory=list)  # {"line", "reason", "value"}


def id_from_url(url: str) -> str:
    """A readable id for a URL: YouTube's ``v=`` when present, else the last path part."""
    parsed = urllib.parse.urlparse(url)
    v = urllib.parse.parse_qs(parsed.query).get("v")
    if v:
        return sanitize_id(v[0])
    stem = Path(parsed.path).stem or parsed.netloc
    return sanitize_id(stem)


def _row(line: int, video_id: str | None, url: str | None, template: str, base_url: str) -> dict:
    video_id = (video_id or "").strip()
    url = (url or "").strip()
    if not url and not video_id:
        return {"line": line, "reason": "empty_row", "value": ""}
    if not url:
        if not _YT_ID.match(video_id) and "{id}" in template and "youtube" in template:
            return {"line": line, "reason": "malformed_video_id", "value": video_id[:80]}
        url = template.format(id=video_id)
    elif base_url and not urllib.parse.urlparse(url).scheme:
        url = urllib.parse.urljoin(base_url, url)
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        return {"line": line, "reason": "unsupported_url_scheme", "value": url[:80]}
    return {"video_id": sanitize_id(video_id) if video_id else id_from_url(url), "url": url}


def read_manifest(path: str | Path, url_template: str, base_url: str = "") -> Manifest:
    """Rows in file order, duplicates of an earlier video id rejected."""
    path = Path(path)
    raw: list[tuple[int, str | None, str | None]] = []
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pylist()
        for i, r in enumerate(table, start=1):
            raw.append((i, r.get("video_id"), r.get("url")))
    elif suffix in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            if not reader.fieldnames or not ({"video_id", "url"} & set(reader.fieldnames)):
                raise ValueError(f"{path}: a CSV manifest needs a 'video_id' or 'url' column")
            for i, r in enumerate(reader, start=2):
                raw.append((i, r.get("video_id"), r.get("url")))
    else:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            is_url = "://" in line or line.startswith(("v/", "/"))
            raw.append((i, None if is_url else line, line if is_url else None))
    out = Manifest()
    seen: set[str] = set()
    for line, vid, url in raw:
        row = _row(line, vid, url, url_template, base_url)
        if "reason" in row:
            out.rejected.append(row)
        elif row["video_id"] in seen:
            out.rejected.append({"line": line, "reason": "duplicate_video_id", "value": row["video_id"]})
        else:
            seen.add(row["video_id"])
            out.rows.append(row)
    return out


def iter_manifest(path: str | Path, url_template: str, base_url: str = ""):
    """Rows and rejected rows in file order (duplicates are the planner's job)."""
    from multihowto.schemas.manifest import ManifestRow, RejectedRow

    m = read_manifest(path, url_template, base_url)
    rows = [ManifestRow(0, r["video_id"], r["url"]) for r in m.rows] + [RejectedRow(r["line"], r["reason"], r["value"]) for r in m.rejected]
    yield from rows
