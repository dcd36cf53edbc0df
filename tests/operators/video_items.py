"""Typed items and small loopback sites for the operator tests."""

import shutil
from pathlib import Path

from multihowto.schemas.item import VideoItem


def video(tmp_path, video_id: str, url: str) -> VideoItem:
    """A fresh item with its own scratch folder under ``tmp_path/work``."""
    scratch = tmp_path / "work" / video_id
    scratch.mkdir(parents=True, exist_ok=True)
    return VideoItem(video_id, url, 0, scratch=str(scratch))


def page(video: str, tracks: dict[str, str]) -> str:
    """An HTML5 page with one video and ``tracks`` ({srclang: src})."""
    items = "\n".join(f'<track kind="subtitles" srclang="{lang}" src="{src}">' for lang, src in tracks.items())
    return f"""<!doctype html><html><head><title>t</title></head><body>
<video controls><source src="{video}" type="video/mp4">
{items}
</video></body></html>"""


def small_site_copy(small_site: Path, root: Path, langs=("en", "de", "fr")) -> Path:
    """A site folder at ``root`` with the sample site's first mp4 as ``media/v.mp4`` and its
    tracks in ``langs`` as ``subs/{lang}.vtt``; pages are the caller's."""
    (root / "media").mkdir(parents=True)
    (root / "subs").mkdir()
    (root / "manifest.csv").write_text("video_id,url\n")
    shutil.copy(small_site / "media" / "sample-00.mp4", root / "media" / "v.mp4")
    for lang in langs:
        shutil.copy(small_site / "subs" / f"sample-00.{lang}.vtt", root / "subs" / f"{lang}.vtt")
    return root
