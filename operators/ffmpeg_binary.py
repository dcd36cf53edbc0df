"""The one place that decides which ffmpeg binary runs.

A system ffmpeg wins when present (it may have hardware decoders); otherwise the static
binary shipped inside the ``imageio-ffmpeg`` wheel. ``MULTIHOWTO_FFMPEG`` overrides both.
"""

from __future__ import annotations

import os
import shutil
from functools import lru_cache


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    override = os.environ.get("MULTIHOWTO_FFMPEG")
    if override:
        return override
    system = shutil.which("ffmpeg")
    if system:
        return system
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
