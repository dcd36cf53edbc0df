"""Read a manifest row by row into ``(video_id, url)``; bad rows are kept with a reason.

Accepted inputs (by the file's suffix):
- ``.csv``/``.tsv``: HowTo100M's CSV (``video_id,category_1,category_2,rank,task_id``,
  URLs from ``url_template``), ``video_id,url``, or just ``url``; the header is the first
  non-blank line (a tab-separated ``.csv`` or comma-separated ``.tsv`` is recognised);
- ``.parquet`` with the same columns, read a record batch at a time;
- anything else: text, one URL or id per line, ``#`` comments.

Text is read as users write it: UTF-8 with or without a BOM, UTF-16/32 with a BOM, else
the encoding charset-normalizer finds. Each physical line is parsed on its own (manifests
have no multi-line fields), so a stray quote costs one ``malformed_csv_row``, not the rest
of the file. Memory stays bounded: lines are read one at a time up to ``MAX_LINE_CHARS``.
A problem with the file as a whole raises :class:`ManifestError` naming the file.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import stat
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
import pyarrow as pa
import pyarrow.parquet as pq

from multihowto.schemas.config import ConfigError
from multihowto.schemas.manifest import (
    MAX_ID_CHARS,
    MAX_LINE_CHARS,
    MAX_URL_CHARS,
    ManifestError,
    ManifestRow,
    RejectedRow,
    printable,
)
from multihowto.schemas.sample import sanitize_id

__all__ = [
    "Manifest", "ManifestError", "ManifestRow", "RejectedRow", "check_manifest", "id_from_url",
    "iter_manifest", "read_manifest",
]

_YT_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what URL quoting leaves as is
_SNIFF_BYTES = 1 << 16
_SCAN_CHUNK = 1 << 20
_PARQUET_BATCH = 8192
# BOMs, longest first (UTF-32 LE's starts with UTF-16 LE's).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
# When charset-normalizer finds several encodings about equally plausible (short files
# often decode cleanly in many code pages), the one spreadsheets on Windows write wins.
_PREFERRED = ("cp1252", "cp1250", "cp1251", "gb18030", "cp932", "cp949", "big5", "cp1253", "cp1254",
              "cp1257", "cp1258", "cp1255", "cp1256")
_NEAR_CHAOS = 0.1


@dataclass
class Manifest:
    """The whole manifest in memory (small manifests, tests); the planner streams instead."""

    rows: list[dict] = field(default_factory=list)  # {"video_id", "url"}
    rejected: list[dict] = field(default_factory=list)  # {"line", "reason", "value"}


@dataclass(frozen=True)
class _Layout:
    """What :func:`_inspect` found out about a file before any row is read."""

    path: Path
    kind: str  # "csv", "text", "parquet" or "empty"
    encoding: str = ""
    delimiter: str = ","
    header_line: int = 0
    id_col: int | None = None
    url_col: int | None = None
    columns: tuple[str, ...] = ()  # parquet: the columns to read


def id_from_url(url: str) -> str:
    """A readable id for a URL: YouTube's ``v=`` when present, else the last path part."""
    parsed = urllib.parse.urlparse(url)
    v = urllib.parse.parse_qs(parsed.query).get("v")
    if v:
        return sanitize_id(v[0])
    stem = Path(parsed.path).stem or parsed.netloc
    return sanitize_id(stem)


def check_manifest(path: str | Path) -> None:
    """Open ``path`` and check what can be checked before reading rows: that it is a
    readable file, its encoding (or parquet footer), its ``video_id``/``url`` column.
    Raises :class:`ManifestError` naming the file and the problem; creates nothing."""
    _inspect(Path(path))


def iter_manifest(path: str | Path, url_template: str, base_url: str = "") -> Iterator[ManifestRow | RejectedRow]:
    """The rows of a manifest in file order, one at a time: a :class:`ManifestRow` for
    each good row, a :class:`RejectedRow` (with its reason) for each bad one. Duplicate
    video ids are yielded as they come (the caller rejects them at its scale).

    Whole-file problems raise :class:`ManifestError` here, before the first row.
    Relative URLs are joined to ``base_url``; ids without a URL fill ``url_template``."""
    try:
        url_template.format(id="x")
    except (KeyError, IndexError, ValueError, AttributeError):
        raise ConfigError(f"source.url_template: only {{id}} may be filled in, got {printable(url_template, 60)!r}") from None
    layout = _inspect(Path(path))
    return _rows(layout, url_template, base_url)


def read_manifest(path: str | Path, url_template: str, base_url: str = "") -> Manifest:
    """Every row of :func:`iter_manifest` in memory, duplicates of an earlier video id
    rejected (``duplicate_video_id``)."""
    out = Manifest()
    seen: set[str] = set()
    for row in iter_manifest(path, url_template, base_url):
        if isinstance(row, RejectedRow):
            out.rejected.append({"line": row.line, "reason": row.reason, "value": row.value})
        elif row.video_id in seen:
            out.rejected.append({"line": row.line, "reason": "duplicate_video_id", "value": row.video_id})
        else:
            seen.add(row.video_id)
            out.rows.append({"video_id": row.video_id, "url": row.url})
    return out


# -- the file as a whole ----------------------------------------------------------------


def _inspect(path: Path) -> _Layout:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest file") from None
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the manifest ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ManifestError(f"{path}: is a folder, not a manifest file")
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise ManifestError(f"{path}: cannot read the manifest (permission denied)")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _inspect_parquet(path)
    if st.st_size == 0:
        return _Layout(path, "empty")
    encoding = _text_encoding(path)
    if suffix not in (".csv", ".tsv"):
        return _Layout(path, "text", encoding)
    for number, text, too_long in _lines(path, encoding):
        if too_long:
            raise ManifestError(f"{path}: header line {number} is longer than {MAX_LINE_CHARS} characters")
        if text.strip():
            return _csv_layout(path, encoding, number, text, "\t" if suffix == ".tsv" else ",")
    return _Layout(path, "empty")


def _csv_layout(path: Path, encoding: str, number: int, header: str, delimiter: str) -> _Layout:
    """The ``video_id``/``url`` columns of a header line (names matched without case, the
    other delimiter tried when the file's suffix named the wrong one)."""
    found: list[list[str]] = []
    for delim in (delimiter, "," if delimiter == "\t" else "\t"):
        try:
            names = [n.strip().lstrip("\ufeff").strip().lower() for n in _parse_line(header, delim)]
        except csv.Error as e:
            raise ManifestError(f"{path}: header line {number} is not valid CSV ({e})") from None
        if "video_id" in names or "url" in names:
            id_col = names.index("video_id") if "video_id" in names else None
            url_col = names.index("url") if "url" in names else None
            return _Layout(path, "csv", encoding, delim, number, id_col, url_col)
        found.append(names)
    raise ManifestError(f"{path}: no 'video_id' or 'url' column in the header on line {number} (found: {_names(found[0])})")


def _inspect_parquet(path: Path) -> _Layout:
    try:
        names = pq.ParquetFile(path).schema_arrow.names
    except (pa.ArrowException, OSError) as e:
        raise ManifestError(f"{path}: not a parquet file ({printable(str(e).splitlines()[0] if str(e) else type(e).__name__, 120)})") from None
    columns = tuple(c for c in ("video_id", "url") if c in names)
    if not columns:
        raise ManifestError(f"{path}: no 'video_id' or 'url' column (found: {_names(names)})")
    return _Layout(path, "parquet", columns=columns)


def _names(names: list[str], shown: int = 8) -> str:
    if not names:
        return "nothing"
    out = ", ".join(repr(printable(n, 40)) for n in names[:shown])
    return out + (f", ... ({len(names)} in all)" if len(names) > shown else "")


def _text_encoding(path: Path) -> str:
    """The file's text encoding: a BOM's, else UTF-8 when every byte decodes as UTF-8,
    else charset-normalizer's guess on the head and the region around the first byte
    that is not UTF-8. Raises ManifestError for a binary file."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
        for bom, encoding in _BOMS:
            if head.startswith(bom):
                return encoding
        if b"\x00" in head and not _is_utf8(head.replace(b"\x00", b"")):
            # a NUL in a row of a UTF-8 file is that row's problem; elsewhere it means binary
            raise ManifestError(f"{path}: a binary file, not a text manifest (NUL bytes; UTF-16 needs a byte-order mark)")
        bad_at = _first_non_utf8(f)
        if bad_at is None:
            return "utf-8"
        f.seek(max(0, bad_at - _SNIFF_BYTES // 2))
        around = f.read(_SNIFF_BYTES)
    sample = head if bad_at < len(head) else head + b"\n" + around
    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        raise ManifestError(f"{path}: a binary file, not text in any encoding charset-normalizer knows")
    near = {m.encoding for m in matches if m.chaos <= best.chaos + _NEAR_CHAOS}
    return next((e for e in _PREFERRED if e in near), best.encoding)


def _is_utf8(head: bytes) -> bool:
    """Whether ``head``, the start of a file, is UTF-8 (a character cut at its end allowed)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return False
    return True


def _first_non_utf8(f) -> int | None:
    """The offset of the first byte of ``f`` (from its start) that is not UTF-8, or None."""
    f.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    while chunk := f.read(_SCAN_CHUNK):
        pending = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as e:
            return max(0, offset - pending + e.start)
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset
    return None


# -- rows -------------------------------------------------------------------------------


def _lines(path: Path, encoding: str) -> Iterator[tuple[int, str, bool]]:
    """``(line number, text without its line ending, too_long)`` per physical line. A
    line past MAX_LINE_CHARS comes as its first MAX_LINE_CHARS characters with
    ``too_long`` set; the rest of it is read past, never held. Bytes not valid in the
    encoding read as U+FFFD."""
    with open(path, encoding=encoding, errors="replace", newline=None) as f:
        number = 0
        while chunk := f.readline(MAX_LINE_CHARS + 1):
            number += 1
            if chunk.endswith("\n"):
                yield number, chunk[:-1], False
            elif len(chunk) <= MAX_LINE_CHARS:
                yield number, chunk, False  # the last line, without a line ending
            else:
                rest = chunk
                while rest and not rest.endswith("\n"):
                    rest = f.readline(MAX_LINE_CHARS + 1)
                yield number, chunk[:MAX_LINE_CHARS], True


def _parse_line(text: str, delimiter: str) -> list[str]:
    return next(csv.reader([text], delimiter=delimiter, strict=True), [])


def _rows(layout: _Layout, template: str, base_url: str) -> Iterator[ManifestRow | RejectedRow]:
    make = _RowMaker(template, base_url)
    if layout.kind == "parquet":
        yield from _parquet_rows(layout, make)
        return
    if layout.kind == "empty":
        return
    for number, text, too_long in _lines(layout.path, layout.encoding):
        if too_long:
            yield RejectedRow(number, "line_too_long", printable(text))
            continue
        if layout.kind == "text":
            value = text.strip()
            if not value or value.startswith("#"):
                continue
            is_url = "://" in value or value.startswith(("v/", "/"))
            yield make(number, None if is_url else value, value if is_url else None)
            continue
        if number <= layout.header_line or not text.strip():
            continue
        if "\x00" in text:
            yield RejectedRow(number, "control_characters", printable(text))
            continue
        try:
            cells = _parse_line(text, layout.delimiter)
        except csv.Error:
            yield RejectedRow(number, "malformed_csv_row", printable(text))
            continue
        yield make(number, _cell(cells, layout.id_col), _cell(cells, layout.url_col))


def _cell(cells: list[str], index: int | None) -> str | None:
    return cells[index] if index is not None and index < len(cells) else None


def _parquet_rows(layout: _Layout, make: _RowMaker) -> Iterator[ManifestRow | RejectedRow]:
    number = 0
    for batch in pq.ParquetFile(layout.path).iter_batches(batch_size=_PARQUET_BATCH, columns=list(layout.columns)):
        names = batch.schema.names
        ids = batch.column(names.index("video_id")).to_pylist() if "video_id" in names else [None] * batch.num_rows
        urls = batch.column(names.index("url")).to_pylist() if "url" in names else [None] * batch.num_rows
        for video_id, url in zip(ids, urls, strict=True):
            number += 1
            if type(video_id) is int:  # numeric ids are ids all the same
                video_id = str(video_id)
            odd = [v for v in (video_id, url) if v is not None and not isinstance(v, str)]
            if odd:
                yield RejectedRow(number, "not_a_string", printable(repr(odd[0])))
                continue
            yield make(number, video_id, url)


class _RowMaker:
    """One row from its raw id and URL (either may be missing): checked, the URL built
    from ``template`` when only an id is given, the id sanitised or taken from the URL."""

    _PROBE = "0probe0"

    def __init__(self, template: str, base_url: str):
        self.template, self.base_url = template, base_url
        self.youtube = "{id}" in template and "youtube" in template
        # When the id only fills the path or query of an http(s) template, a URL built
        # from it needs no parsing per row (a million rows of HowTo100M): work it out once.
        try:
            probe = urllib.parse.urlsplit(template.format(id=self._PROBE))
            _ = probe.port  # a bad port raises
            self.template_ok = (
                probe.scheme in ("http", "https") and bool(probe.hostname) and self._PROBE not in probe.netloc.lower()
            )
        except ValueError:
            self.template_ok = False

    def __call__(self, line: int, video_id: str | None, url: str | None) -> ManifestRow | RejectedRow:
        video_id = (video_id or "").strip()
        url = (url or "").strip()
        if not url and not video_id:
            return RejectedRow(line, "empty_row", "")
        for value, cap, reason in ((video_id, MAX_ID_CHARS, "id_too_long"), (url, MAX_URL_CHARS, "url_too_long")):
            if len(value) > cap:
                return RejectedRow(line, reason, printable(value))
            if "\ufffd" in value:
                return RejectedRow(line, "undecodable_row", printable(value))
            if not value.isprintable():  # control, format (zero-width, bidi) or line-separator characters
                return RejectedRow(line, "control_characters", printable(value))
        if not url:
            if self.youtube and not _YT_ID.match(video_id):
                return RejectedRow(line, "malformed_video_id", printable(video_id))
            quoted = video_id if _UNRESERVED.fullmatch(video_id) else urllib.parse.quote(video_id, safe="")
            url = self.template.format(id=quoted)
            if self.template_ok:
                return ManifestRow(line, sanitize_id(video_id), url)
        elif self.base_url and "://" not in url:
            url = urllib.parse.urljoin(self.base_url, url)
        try:
            parts = urllib.parse.urlsplit(url)
            host, _ = parts.hostname, parts.port  # a bad port raises here, not in yt-dlp
        except ValueError:
            return RejectedRow(line, "malformed_url", printable(url))
        if parts.scheme not in ("http", "https"):
            return RejectedRow(line, "unsupported_url_scheme", printable(url))
        if not host:
            return RejectedRow(line, "malformed_url", printable(url))
        return ManifestRow(line, sanitize_id(video_id) if video_id else id_from_url(url), url)
