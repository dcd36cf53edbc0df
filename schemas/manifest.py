"""The manifest's records: what the reader yields for each row it reads.

A manifest lists the videos of a dataset (``pipeline/manifest.py`` reads it). Each data
row becomes either a :class:`ManifestRow` (a sanitised video id and the URL to fetch) or
a :class:`RejectedRow` (why the row was refused, and a bounded, printable copy of what
it held). ``line`` is the row's physical line in the file, 1-based, counting the header
and blank lines (for parquet: the row number, 1-based). A problem with the file as a
whole raises :class:`ManifestError`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Bounds on what is read and quoted: a physical line past MAX_LINE_CHARS is refused
# unparsed (the rest of it skipped, not held); a video id or a URL past its cap is refused.
MAX_LINE_CHARS = 16_384
MAX_ID_CHARS = 200
MAX_URL_CHARS = 4096
MAX_QUOTED_CHARS = 200  # of a rejected row's value

# Why a row is refused (RejectedRow.reason).
REJECT_REASONS = (
    "empty_row",  # neither a video id nor a URL
    "malformed_csv_row",  # the csv module could not parse the line (a stray quote, ...)
    "line_too_long",  # past MAX_LINE_CHARS
    "undecodable_row",  # bytes not valid in the file's encoding
    "control_characters",  # NUL or another control/format character in the id or URL
    "id_too_long",  # past MAX_ID_CHARS
    "url_too_long",  # past MAX_URL_CHARS
    "malformed_video_id",  # not an 11-character YouTube id where a YouTube URL is built
    "malformed_url",  # a URL that does not parse or names no host
    "unsupported_url_scheme",  # not http or https
    "not_a_string",  # a parquet value that is neither text nor an integer
    "duplicate_video_id",  # only from read_manifest and the planner: the reader keeps them
)


class ManifestError(ValueError):
    """The manifest as a whole cannot be read (missing, a folder, binary, no ``video_id``
    or ``url`` column, ...); the message names the file and the problem, on one line."""


@dataclass(frozen=True, slots=True)
class ManifestRow:
    line: int
    video_id: str  # sanitised: see schemas.sample.sanitize_id
    url: str  # http(s)


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    reason: str  # one of REJECT_REASONS
    value: str  # what the row held, at most MAX_QUOTED_CHARS, control characters escaped


def printable(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """``text`` cut to ``limit`` characters with control characters escaped (``\\x00``):
    safe to quote in a log line, a parquet cell or a report."""
    text = text[:limit]
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
