"""Language ID with the real lid.176 model on real CLDR text."""

from multihowto.operators.langid import LanguageId, LanguageIdentifier, text_units, track_verdict
from multihowto.sample_site.material import load_emoji
from multihowto.schemas.config import LangIdConfig
from multihowto.schemas.item import Track, VideoItem
from multihowto.schemas.sample import LANGS


def _track(texts):
    return Track(cues=[[i * 3.0, i * 3.0 + 2.5, t] for i, t in enumerate(texts)], format="vtt", kind="manual")


def _video(tracks):
    return VideoItem("v", "", 0, tracks=tracks)


def test_identifier_on_real_sentences():
    lid = LanguageIdentifier()
    assert lid.top("Heute backen wir zusammen ein Brot aus Mehl und Wasser.")[0] == "de"
    assert lid.top("Сегодня мы будем печь хлеб из муки и воды.")[0] == "ru"
    assert lid.top("")[0] == "und"


def test_verdicts():
    cfg = LangIdConfig()
    assert track_verdict("de", {"de": 0.9}, 100, cfg)["verdict"] == "accept"
    wrong = track_verdict("de", {"fr": 0.9, "de": 0.01}, 100, cfg)
    assert (wrong["verdict"], wrong["reason"], wrong["label"]) == ("reject", "wrong_language", "fr")
    assert track_verdict("sw", {"en": 0.3, "sw": 0.2}, 100, cfg)["verdict"] == "uncertain"
    assert track_verdict("en", {"en": 0.9}, 5, cfg)["reason"] == "too_little_text"


def test_operator_rejects_a_track_in_the_wrong_language():
    emoji = load_emoji()[400:410]
    item = _video({
        "en": _track([e.names["en"] for e in emoji]),
        "de": _track([e.names["fr"] for e in emoji]),  # claims German, holds French
        "ru": _track([e.names["ru"] for e in emoji]),
    })
    [out] = LanguageId(LangIdConfig(), LANGS).process_batch([item])
    assert out.ok
    assert set(out.tracks) == {"en", "ru"}
    assert out.lid_rejected == {"de": "wrong_language"}
    assert out.lid["de"]["label"] == "fr" and out.lid["de"]["score"] >= 0.5
    assert out.lid["ru"]["verdict"] == "accept"
    assert len(out.tracks["en"].cue_lid) == 10


def test_thresholds_come_from_config():
    emoji = load_emoji()[400:410]
    item = _video({"de": _track([e.names["fr"] for e in emoji])})
    lax = LangIdConfig(reject_score=0.999, accept_floor=0.001)
    [out] = LanguageId(lax, LANGS).process_batch([item])
    assert out.lid["de"]["verdict"] == "uncertain"


def test_top_k_verdicts_equal_full_distribution_verdicts():
    """The operator reads only the top k labels per track; on real tracks (genuine and
    mislabelled) every verdict equals the one over all 176 labels, except an accept may
    become uncertain when every target language is below 1/(k+1)."""
    import random

    from multihowto.operators.langid import track_line

    cfg = LangIdConfig()
    op = LanguageId(cfg, LANGS)
    op.setup()
    rng = random.Random(7)
    emoji = load_emoji()
    checked = 0
    for claimed in LANGS:
        for real in LANGS:
            for _ in range(6):
                text = track_line([e.names[real] for e in rng.sample(emoji, 8)])
                full = track_verdict(claimed, op.lid.scores(text, 176), len(text), cfg)
                fast = track_verdict(claimed, op.lid.scores(text, op.k[claimed]), len(text), cfg)
                checked += 1
                if full["verdict"] == fast["verdict"]:
                    continue
                assert (full["verdict"], fast["verdict"]) == ("accept", "uncertain")
                assert max(op.lid.scores(text, 176).values()) <= 1 / (op.k[claimed] + 1)
    assert checked == 9 * 9 * 6


def test_a_chinese_track_is_classified_with_its_cues_apart():
    """Regression: CJK cues glued into one string (as clip text joins them) read as one
    "word" to fastText and came out English; the verdict classifies them spaced."""
    cues = "彩虹旗 煎蛋 九点半 星月 西瓜 旗: 斯里兰卡 黑心 快进按钮 来信".split(" ")
    [out] = LanguageId(LangIdConfig(), LANGS).process_batch([_video({"zh": _track(cues)})])
    assert out.lid["zh"]["verdict"] == "accept" and out.lid["zh"]["score"] > 0.9


def test_text_length_is_fair_across_scripts():
    """#15.9: a whole short Chinese sentence is enough text for a verdict; a few
    characters of any script, or digits and punctuation, are not."""
    assert text_units("我们今天一起做面包。") == 27  # 9 Han x 3; the full stop counts nothing
    assert text_units("how to make") == 9  # letters only
    assert text_units("오늘 빵을 만들어요") == 24 and text_units("パンを作ります") == 21
    assert text_units("12:30 -- 12:45 !!!") == 0
    cfg = LangIdConfig()
    op = LanguageId(cfg, LANGS)
    tracks = {
        "zh": _track(["我们今天一起做面包。"]),  # one complete 9-character sentence
        "ru": _track(["Спасибо!"]),  # 7 letters: too little, as before
        "en": _track(["12:30 -- 12:45", "!!! ..."]),  # 16+ characters, but no word
        "de": _track(["谢谢你！"]),  # 3 Han = 9 units: still too little
    }
    [out] = op.process_batch([_video(tracks)])
    assert out.lid["zh"]["verdict"] == "accept", out.lid["zh"]
    assert out.lid_rejected == {"ru": "too_little_text", "en": "too_little_text", "de": "too_little_text"}
    assert cfg.min_chars == 12 and text_units("Спасибо!") < cfg.min_chars
    # the weight is the profile's
    [out] = LanguageId(LangIdConfig(cjk_weight=1.0), LANGS).process_batch([_video({"zh": _track(["我们今天一起做面包。"])})])
    assert out.lid_rejected == {"zh": "too_little_text"}
