"""Subtitle bytes to text: the encoding a track is really in, and text repaired of mojibake.

Order of evidence, most certain first:

1. a byte-order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) decides; bytes that do not
   decode under their own BOM are ``undecodable``;
2. UTF-8, when the bytes decode as UTF-8 (and are not mostly NUL bytes, which is
   UTF-16/32 without a BOM);
3. otherwise charset-normalizer, asked first among the legacy code pages usual for the
   track's claimed language (:data:`LEGACY_ENCODINGS`: cp1251/KOI8-R for Russian,
   GB18030 for Chinese, cp1252/Latin-1 for western European...), then among all. When
   it leaves several candidates, the language confirms: the reading with the most of
   the language's own letters (:data:`LETTERS`) and the fewest case breaks inside
   words, and among equals fastText LID: a reading in which the claimed language is
   clearly more probable overrules the detector's first choice (GB2312 read as Big5 is
   all Han, but no longer Chinese). Bytes no detector accepts are ``undecodable``.

Text that was double-encoded upstream (UTF-8 read as cp1252 and saved again:
``Ã‰VÃ‰NEMENTS``) decodes cleanly as UTF-8 but is mojibake. :func:`repair_text` mends
it with ftfy's encoding fixer (only that: quotes, ligatures and widths are left alone)
and says whether it changed anything; :func:`still_mojibake` flags what ftfy cannot
mend, so that it is dropped and counted rather than shipped.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

import charset_normalizer
import ftfy
from ftfy.badness import is_bad

from multihowto.operators.langid import LanguageIdentifier

_BOMS = (  # UTF-32 first: its LE mark begins with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
# The legacy code pages subtitle files of each target language come in, likeliest first.
LEGACY_ENCODINGS: dict[str, tuple[str, ...]] = {
    "en": _WESTERN,
    "de": _WESTERN,
    "fr": _WESTERN,
    "es": _WESTERN,
    "sw": _WESTERN,
    "cs": ("cp1250", "iso8859_2"),
    "ru": ("cp1251", "koi8_r", "iso8859_5", "cp866", "mac_cyrillic"),
    "zh": ("gb18030", "big5"),  # GB18030 reads GB2312 and GBK too
    "vi": ("cp1258",),
}
# The letters beyond ASCII each language writes (lower case, NFC). Code pages that both
# decode a file cleanly differ in exactly these: ISO-8859-2 Czech read as cp1250 turns
# š into ą, Mac Cyrillic read as cp1251 turns С into ‘; the right reading has the most.
LETTERS: dict[str, str] = {
    "de": "äöüß",
    "fr": "àâæçéèêëîïôœùûüÿ",
    "es": "áéíñóúü",
    "cs": "áčďéěíňóřšťúůýž",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "vi": "àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ",
}
LID_MARGIN = 0.3  # how much likelier the claimed language must be to overrule the detector
LID_SAMPLE_CHARS = 4000  # text the LID confirmation reads: plenty for a verdict, cheap
_NOT_TEXT = re.compile(r"-->|^\s*\d*\s*$|^WEBVTT|^NOTE\b|^STYLE\b")
_TAGS = re.compile(r"<[^>]*>|\{\\[^}]*\}")


class UndecodableError(ValueError):
    """No encoding fits the bytes; the message says what was tried."""


def _codec_name(name: str) -> str:
    return codecs.lookup(name).name


def decode_caption_bytes(data: bytes, lang: str = "") -> tuple[str, str]:
    """``(text, encoding)`` for a subtitle file's bytes; ``lang`` is the track's claimed
    language (a target code, or empty when unknown). Raises :class:`UndecodableError`."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(name), name
            except UnicodeDecodeError as e:
                raise UndecodableError(f"starts with the {name} byte-order mark but {e}") from None
    if data.count(0) * 8 <= len(data):  # else mostly NUL: UTF-16/32 without a mark, leave it to detection
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    candidates = _candidates(data, lang)
    if not candidates:
        preferred = ", ".join(LEGACY_ENCODINGS.get(lang, ())) or "none for this language"
        raise UndecodableError(f"not UTF-8, no byte-order mark, and no encoding fits (tried {preferred}, then any)")
    enc = candidates[0] if len(candidates) == 1 else choose_encoding(data, candidates[:3], lang)
    return data.decode(enc), enc


def _candidates(data: bytes, lang: str) -> list[str]:
    """Encodings charset-normalizer accepts for ``data`` and that decode all of it:
    those usual for ``lang`` first, then its best guesses over every code page."""
    seen: list[str] = []
    preferred = LEGACY_ENCODINGS.get(lang)
    searches = [dict(cp_isolation=list(preferred)), {}] if preferred else [{}]
    for kwargs in searches:
        for match in charset_normalizer.from_bytes(data, **kwargs):
            name = _codec_name(match.encoding)
            if name in seen:
                continue
            try:
                data.decode(name)
            except (UnicodeDecodeError, LookupError):
                continue
            seen.append(name)
    return seen


def _lid_text(text: str) -> str:
    lines = (_TAGS.sub("", line) for line in text.splitlines() if not _NOT_TEXT.search(line))
    return " ".join(" ".join(lines).split())[:LID_SAMPLE_CHARS]


def _fit(text: str, lang: str) -> int:
    """How well a reading fits ``lang``, on a sample of its cue text: the letters
    ``lang`` writes beyond ASCII, less two for each case break (a lower-case letter
    followed by a capital: KOI8-R read as cp1251 gives "яЕЦНДМЪ")."""
    sample = _lid_text(text)
    breaks = sum(1 for a, b in zip(sample, sample[1:], strict=False) if a.islower() and b.isupper())
    alphabet = LETTERS.get(lang, "")  # none for Chinese: a wrong double-byte reading is Han too
    own = sum(1 for ch in unicodedata.normalize("NFC", sample).lower() if ch in alphabet) if alphabet else 0
    return own - 2 * breaks


def choose_encoding(data: bytes, candidates: list[str], lang: str) -> str:
    """Among the ``candidates`` (Python codec names, likeliest first) that decode
    ``data``: those whose text fits the claimed language best (:func:`_fit`); of these,
    the detector's first, unless fastText finds the claimed language (with no claim:
    any target language) clearly more probable, by :data:`LID_MARGIN`, in another. LID
    shrugs off a few wrong letters, so it only settles what letters cannot, as GB2312
    read as Big5 (all Han)."""
    texts = {}
    for enc in candidates:
        try:
            texts[enc] = data.decode(enc)
        except UnicodeDecodeError:  # not a candidate after all
            continue
    if not texts:
        raise UndecodableError(f"none of {', '.join(candidates)} decodes the bytes")
    candidates = list(texts)
    counts = {enc: _fit(texts[enc], lang) for enc in candidates}
    most = max(counts.values())
    candidates = [enc for enc in candidates if counts[enc] == most]
    if len(candidates) == 1:
        return candidates[0]
    lid = LanguageIdentifier()

    def score(enc: str) -> float:
        scores = lid.scores(_lid_text(texts[enc]))
        return scores.get(lang, 0.0) if lang in lid.targets else max(scores.values(), default=0.0)

    scores = [score(enc) for enc in candidates]
    best = max(range(len(candidates)), key=scores.__getitem__)
    return candidates[best] if scores[best] >= scores[0] + LID_MARGIN else candidates[0]


def repair_text(text: str) -> tuple[str, bool]:
    """Undo double encoding (``Ã©`` -> ``é``); ``(text, changed)``."""
    if text.isascii():
        return text, False
    fixed = ftfy.fix_encoding(text)
    return fixed, fixed != text


def still_mojibake(text: str) -> bool:
    """True when the text still looks like mis-decoded bytes after repair, or holds
    U+FFFD (bytes lost upstream, which ftfy marks so rather than guess)."""
    return not text.isascii() and ("\ufffd" in text or is_bad(text))
