"""How the sample site plans its videos (no encoding: these read the plan only)."""

from collections import Counter

import pytest

from multihowto.sample_site.build import _plan_videos
from multihowto.sample_site.spec import SiteSpec


def test_without_a_pool_every_cue_shows_another_emoji():
    videos = _plan_videos(SiteSpec(n_videos=14))
    shown = [c.emoji for cues in videos for c in cues]
    assert len(shown) == len(set(shown))


def test_a_pool_makes_each_emoji_recur_evenly_never_twice_in_a_video():
    spec = SiteSpec(n_videos=40, cues_per_video=(8, 12), emoji_pool=30)
    videos = _plan_videos(spec)
    counts = Counter(c.emoji for cues in videos for c in cues)
    assert len(counts) == 30
    assert max(counts.values()) - min(counts.values()) <= 2, counts
    for cues in videos:
        assert len({c.emoji for c in cues}) == len(cues)
    # the same emoji carries the same names wherever it recurs
    names = {}
    for cues in videos:
        for c in cues:
            assert names.setdefault(c.emoji, c.texts) == c.texts


def test_a_pool_smaller_than_a_video_is_refused():
    with pytest.raises(ValueError, match="emoji_pool"):
        _plan_videos(SiteSpec(n_videos=3, cues_per_video=(8, 8), emoji_pool=5))
