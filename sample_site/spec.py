"""What a sample site holds: the one dataclass the builder reads, in a module with no
heavy imports, so that the recipe can name its site where nothing can build one (a GPU
machine with no ffmpeg)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteSpec:
    """What to build. Defaults give 14 videos, about six minutes in all."""

    n_videos: int = 14
    cues_per_video: tuple[int, int] = (6, 10)
    cue_seconds: tuple[float, float] = (2.5, 4.5)
    seed: int = 0
    rolling_en: tuple[int, ...] = (1, 5, 11)  # videos whose English is YouTube ASR
    wrong_language: tuple[int, str, str] = (3, "de", "fr")  # video, track, real text
    missing_langs: tuple[int, tuple[str, ...]] = (7, ("sw", "cs"))
    corrupt_video: int = 9
    fps: int = 25
    # 0: every cue shows a different emoji. N: the cues draw on N emoji, each shown about
    # equally often across videos (never twice in one video), so a concept recurs in
    # other videos with other footage, as HowTo100M's topics recur across its videos.
    emoji_pool: int = 0
