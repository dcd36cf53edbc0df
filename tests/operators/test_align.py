"""Alignment by time overlap, on tracks cut differently from the pivot."""

from multihowto.operators.align import AlignTracks, assign_cues, build_clips
from multihowto.schemas.config import AlignConfig
from multihowto.schemas.item import Track, VideoItem

LANGS3 = ("en", "de", "fr")

PIVOT = [
    [0.16, 2.79, "today we're going to make bread"],
    [2.80, 5.51, "first mix the flour and water"],
    [8.25, 11.03, "then knead it for ten minutes"],
    [11.04, 13.87, "until the dough is smooth"],
]
# German cut differently: line 1 split in two, lines 3+4 merged into one cue, all
# shifted by up to 300 ms.
GERMAN = [
    [0.45, 1.50, "Heute backen wir"],
    [1.50, 3.05, "ein Brot."],
    [3.10, 5.80, "Zuerst Mehl und Wasser mischen."],
    [7.95, 13.60, "Dann zehn Minuten kneten, bis der Teig glatt ist."],
]


def _item(tracks):
    return VideoItem("v", "", 0, tracks={k: Track(cues=v, format="vtt", kind="manual") for k, v in tracks.items()})


def test_differently_cut_tracks_land_in_the_right_clips():
    [out] = AlignTracks(AlignConfig(), LANGS3).process_batch([_item({"en": PIVOT, "de": GERMAN})])
    assert out.ok and out.pivot == "en"
    texts = [c.texts for c in out.clips]
    assert texts[0] == {"en": PIVOT[0][2], "de": "Heute backen wir ein Brot."}
    assert texts[1] == {"en": PIVOT[1][2], "de": "Zuerst Mehl und Wasser mischen."}
    # the merged German cue spans two English clips: it goes to the one it overlaps most
    assert sum("de" in t for t in texts[2:]) == 1
    assert "Dann zehn Minuten kneten" in (texts[2].get("de") or texts[3].get("de"))
    assert out.missing_langs == {"fr": "no_track"}
    assert 0 < out.clips[0].confidence["de"] <= 1


def test_shift_of_300ms_keeps_assignment():
    shifted = [[s + 0.3, e + 0.3, t] for s, e, t in PIVOT]
    got = assign_cues([{"start": s, "end": e} for s, e, _ in PIVOT], shifted, 0.5)
    assert [t for t, _ in got] == [t for _, _, t in PIVOT]


def test_clips_are_merged_and_split_to_bounds():
    cues = [(0.0, 0.4, "a"), (0.5, 0.9, "b"), (1.0, 3.0, "c d"), (3.0, 25.0, "one two three four five six")]
    clips = build_clips(cues, min_s=1.0, max_s=10.0)
    # short lines merge until the clip reaches min_s
    assert (clips[0]["start"], clips[0]["end"], clips[0]["text"]) == (0.0, 3.0, "a b c d")
    long = [c for c in clips if c["start"] >= 3.0]
    assert len(long) == 3 and all(c["end"] - c["start"] <= 10.0 for c in long)
    assert " ".join(c["text"] for c in long) == "one two three four five six"


def test_pivot_falls_back_when_english_is_gone():
    item = _item({"de": GERMAN})
    item.lid_rejected = {"en": "wrong_language"}
    [out] = AlignTracks(AlignConfig(pivot="en"), LANGS3).process_batch([item])
    assert out.pivot == "de"
    assert out.missing_langs["en"] == "lid_wrong_language"


def test_no_track_fails_the_video_with_a_reason():
    [out] = AlignTracks(AlignConfig(), LANGS3).process_batch([_item({})])
    assert out.status == "failed" and out.failure.reason == "no_usable_subtitles" and out.failure.stage == "align"


def test_a_cue_of_100000_hours_is_refused_before_any_clip_is_made():
    item = _item({"en": [[0.0, 359_999_999.0, "one cue that never ends"]]})
    [out] = AlignTracks(AlignConfig(), LANGS3).process_batch([item])
    assert out.failure.reason == "too_many_clips" and out.clips == []


def test_cues_after_the_stated_duration_plan_no_clip():
    item = _item({"en": PIVOT})
    item.info = {"duration": 6.0}
    [out] = AlignTracks(AlignConfig(), LANGS3).process_batch([item])
    assert out.ok and [c.index for c in out.clips] == [0, 1] and out.clips[-1].end <= 6.0
