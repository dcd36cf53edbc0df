"""Subtitle language tags (BCP 47, as sites write them) to the nine target languages.

``target_lang`` maps a tag to one of ``schemas.sample.LANGS`` or None, with langcodes
doing the parsing (case, ``_`` for ``-``, regions, scripts, deprecated codes). YouTube's
``-orig`` suffix (the original-language ASR track) is a variant of its language. A tag
whose script is not the language's usual one (``ru-Latn``) is not taken as the language;
Chinese in Traditional script (``zh-Hant``, ``zh-TW``) is taken as ``zh`` only when no
Simplified track exists (our ``zh`` is Simplified, as CLDR's text is).

When several tracks map to one language, ``track_rank`` orders them, best first:
manual before ASR, then (for zh) Simplified before Traditional, then the plain tag
(``de``, ``EN``) before a region or script variant (``de-DE``, ``en-orig``), then by tag.
"""

from __future__ import annotations

import langcodes

from multihowto.schemas.sample import LANGS

_ORIG = "-orig"
_ALIASES = {"cmn": "zh"}  # Mandarin, which some sites tag as the individual language


def _parse(tag: str) -> tuple[langcodes.Language | None, bool]:
    """The parsed tag and whether it carried YouTube's ``-orig`` suffix."""
    text = tag.strip().replace("_", "-")
    orig = text.lower().endswith(_ORIG)
    if orig:
        text = text[: -len(_ORIG)]
    try:
        return langcodes.Language.get(text, normalize=True), orig
    except (langcodes.LanguageTagError, ValueError):
        return None, orig


def target_lang(tag: str) -> str | None:
    """The target language a track tagged ``tag`` is in, or None (not one of ours, or a
    tag that does not parse)."""
    parsed, _ = _parse(tag)
    if parsed is None or not parsed.language:
        return None
    lang = _ALIASES.get(parsed.language, parsed.language)
    if lang not in LANGS:
        return None
    script = parsed.maximize().script if (parsed.script or parsed.territory) else None
    usual = langcodes.Language.get(lang).maximize().script
    if script and script != usual and not (lang == "zh" and script == "Hant"):
        return None
    return lang


def is_traditional_chinese(tag: str) -> bool:
    parsed, _ = _parse(tag)
    return parsed is not None and (parsed.script or parsed.territory) is not None and parsed.maximize().script == "Hant"


def track_rank(tag: str, kind: str) -> tuple:
    """Sort key among the tracks of one language (lower is better); see the module doc."""
    parsed, orig = _parse(tag)
    plain = parsed is not None and not orig and not (parsed.script or parsed.territory or parsed.extensions or parsed.private)
    return (kind != "manual", is_traditional_chinese(tag), not plain, tag)
