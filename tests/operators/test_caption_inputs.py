"""Subtitle files as they come from the wild (issue #15.5/#15.6, #14.6/#14.10): every
encoding a subtitle editor writes, double-encoded text, ASS tags in SRT, WebVTT ruby,
SRT without cue numbers, hostile sizes and timings, control characters.

The encoded files are made here from real sentences (a short recipe in each language),
byte for byte as the editors write them: BOM + UTF-16/32, Windows code pages, GB2312.
"""

import codecs
import dataclasses
import json
import tracemalloc
import unicodedata

import pytest

from multihowto.operators.caption_encoding import choose_encoding
from multihowto.operators.caption_formats import (
    CaptionFormatError,
    parse_caption_file,
)
from multihowto.operators.caption_text import normalise_text
from multihowto.operators.subtitles import ParseSubtitles, how2_track, read_track, track_from_bytes
from multihowto.schemas.config import ConfigError, RegionConfig, SubtitlesConfig, validate
from multihowto.schemas.download import RawTrack
from multihowto.schemas.item import VideoItem
from multihowto.schemas.sample import LANGS
from tests.conftest import DATA

RECIPES = {
    "fr": [
        "Aujourd’hui, nous préparons une tarte aux pommes.",
        "Épluchez les pommes et coupez-les en quartiers.",
        "Étalez la pâte dans le moule beurré… puis piquez-la.",
        "Disposez les fruits en rosace et ajoutez un peu de crème fraîche.",
        "Faites cuire quarante minutes à deux cents degrés ; ça coûte moins de 5 €.",
        "Laissez refroidir avant de démouler. Bon appétit, et à bientôt !",
    ],
    "de": [
        "Heute backen wir zusammen einen Apfelkuchen.",
        "Schälen Sie die Äpfel und schneiden Sie sie in Stücke.",
        "Rollen Sie den Teig aus und legen Sie die Form damit aus.",
        "Verteilen Sie die Äpfel gleichmäßig und streuen Sie Zucker darüber.",
        "Backen Sie den Kuchen vierzig Minuten bei zweihundert Grad.",
        "Lassen Sie ihn abkühlen, bevor Sie ihn aus der Form lösen.",
    ],
    "es": [
        "Hoy vamos a preparar una tortilla de patatas.",
        "Pela las patatas y córtalas en láminas finas.",
        "Fríelas a fuego lento en abundante aceite de oliva.",
        "Bate los huevos con una pizca de sal y añade las patatas.",
        "Cuaja la tortilla por ambos lados durante unos minutos.",
        "¡Buen provecho, señoras y señores! ¿Os ha gustado?",
    ],
    "ru": [
        "Сегодня мы будем печь яблочный пирог.",
        "Очистите яблоки и нарежьте их дольками.",
        "Раскатайте тесто и выложите его в форму.",
        "Разложите яблоки и посыпьте их сахаром с корицей.",
        "Выпекайте сорок минут при температуре двести градусов.",
        "Дайте пирогу остыть, прежде чем вынимать его из формы.",
    ],
    "zh": [
        "今天我们来做一个苹果派。",
        "把苹果去皮，切成小块。",
        "把面团擀开，铺在模具里。",
        "把苹果均匀地铺在上面，撒上白糖。",
        "用两百度烤四十分钟。",
        "等它凉了再脱模，就可以吃了。",
    ],
    "cs": [
        "Dnes upečeme jablečný koláč.",
        "Oloupejte jablka a nakrájejte je na plátky.",
        "Těsto rozválejte a vložte ho do vymazané formy.",
        "Jablka rovnoměrně rozložte a posypte cukrem se skořicí.",
        "Pečte čtyřicet minut při dvou stech stupních.",
        "Nechte koláč vychladnout, než ho vyndáte z formy.",
    ],
    "vi": [
        "Hôm nay chúng ta sẽ làm bánh táo.",
        "Gọt vỏ táo rồi cắt thành từng miếng nhỏ.",
        "Cán bột thật mỏng và đặt vào khuôn.",
        "Xếp táo đều lên trên và rắc một ít đường.",
        "Nướng bánh trong bốn mươi phút ở hai trăm độ.",
        "Để bánh nguội rồi mới lấy ra khỏi khuôn.",
    ],
}
ZH_HANT = ["今天我們來做一個蘋果派。", "把蘋果去皮，切成小塊。", "把麵團壓開，鋪在模具裡。", "等它涼了再脫模，就可以吃了。"]
# GBK, not GB2312: 焗 (bake, as in 焗饭) is in GBK only.
ZH_GBK = [*RECIPES["zh"][:5], "最后放进烤箱再焗五分钟。"]


def vtt(lines: list[str]) -> str:
    cues = [f"00:00:{2 * i:02d}.000 --> 00:00:{2 * i + 1:02d}.500\n{t}\n" for i, t in enumerate(lines)]
    return "WEBVTT\n\n" + "\n".join(cues)


def srt(lines: list[str], newline: str = "\n") -> str:
    cues = [f"{i + 1}\n00:00:{2 * i:02d},000 --> 00:00:{2 * i + 1:02d},500\n{t}\n" for i, t in enumerate(lines)]
    return "\n".join(cues).replace("\n", newline)


_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def cp1258(text: str) -> bytes:
    """Vietnamese as Windows-1258 writes it: the vowels it has (â ê ô ơ ư ă) as one
    byte, tone marks as combining bytes after them."""
    out = []
    for ch in text:
        try:
            ch.encode("cp1258")
            out.append(ch)
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", ch)
        out.append(unicodedata.normalize("NFC", "".join(c for c in parts if c not in _TONES)))
        out.append("".join(c for c in parts if c in _TONES))
    return "".join(out).encode("cp1258")


def texts(track: dict) -> list[str]:
    return [c[2] for c in track["cues"]]


# (case, claimed language, format, file bytes, encoding to record, expected text)
ENCODED = [
    ("utf-8 BOM vtt", "ru", "vtt", codecs.BOM_UTF8 + vtt(RECIPES["ru"]).encode(), "utf-8", RECIPES["ru"]),
    ("utf-16-le BOM srt, CRLF", "zh", "srt", codecs.BOM_UTF16_LE + srt(RECIPES["zh"], "\r\n").encode("utf-16-le"), "utf-16-le", RECIPES["zh"]),
    ("utf-16-be BOM vtt", "de", "vtt", codecs.BOM_UTF16_BE + vtt(RECIPES["de"]).encode("utf-16-be"), "utf-16-be", RECIPES["de"]),
    ("utf-32-le BOM srt", "vi", "srt", codecs.BOM_UTF32_LE + srt(RECIPES["vi"]).encode("utf-32-le"), "utf-32-le", RECIPES["vi"]),
    ("utf-32-be BOM vtt", "cs", "vtt", codecs.BOM_UTF32_BE + vtt(RECIPES["cs"]).encode("utf-32-be"), "utf-32-be", RECIPES["cs"]),
    ("utf-16-le, no BOM", "fr", "srt", srt(RECIPES["fr"]).encode("utf-16-le"), "utf-16-le", RECIPES["fr"]),
    ("cp1252 fr (’ … € œ-range bytes)", "fr", "srt", srt(RECIPES["fr"], "\r\n").encode("cp1252"), "cp1252", RECIPES["fr"]),
    ("cp1252 de", "de", "vtt", vtt(RECIPES["de"]).encode("cp1252"), "cp1252", RECIPES["de"]),
    ("cp1252 es (ñ ¿ ¡)", "es", "srt", srt(RECIPES["es"]).encode("cp1252"), "cp1252", RECIPES["es"]),
    ("latin-1 de", "de", "srt", srt(RECIPES["de"]).encode("latin-1"), {"cp1252", "iso8859-1", "iso8859-15"}, RECIPES["de"]),
    ("latin-1 es", "es", "vtt", vtt(RECIPES["es"]).encode("latin-1"), {"cp1252", "iso8859-1", "iso8859-15"}, RECIPES["es"]),
    ("cp1250 cs", "cs", "srt", srt(RECIPES["cs"]).encode("cp1250"), {"cp1250", "iso8859-2"}, RECIPES["cs"]),
    ("cp1251 ru", "ru", "srt", srt(RECIPES["ru"], "\r\n").encode("cp1251"), "cp1251", RECIPES["ru"]),
    ("koi8-r ru", "ru", "vtt", vtt(RECIPES["ru"]).encode("koi8_r"), "koi8-r", RECIPES["ru"]),
    ("cp1258 vi (combining tones)", "vi", "srt", cp1258(srt(RECIPES["vi"])), "cp1258", RECIPES["vi"]),
    ("iso8859-2 cs", "cs", "vtt", vtt(RECIPES["cs"]).encode("iso8859_2"), "iso8859-2", RECIPES["cs"]),
    ("iso8859-5 ru", "ru", "srt", srt(RECIPES["ru"]).encode("iso8859_5"), "iso8859-5", RECIPES["ru"]),
    ("cp866 ru (DOS)", "ru", "srt", srt(RECIPES["ru"]).encode("cp866"), "cp866", RECIPES["ru"]),
    ("mac-cyrillic ru", "ru", "vtt", vtt(RECIPES["ru"]).encode("mac_cyrillic"), "mac-cyrillic", RECIPES["ru"]),
    ("big5 zh-Hant", "zh", "srt", srt(ZH_HANT).encode("big5"), "big5", ZH_HANT),
    ("gb2312 zh", "zh", "srt", srt(RECIPES["zh"]).encode("gb2312"), "gb18030", RECIPES["zh"]),
    ("gbk zh", "zh", "vtt", vtt(ZH_GBK).encode("gbk"), "gb18030", ZH_GBK),
]


@pytest.mark.parametrize(("case", "lang", "fmt", "data", "encoding", "expected"), ENCODED, ids=[c[0] for c in ENCODED])
def test_every_encoding_is_read_and_recorded(case, lang, fmt, data, encoding, expected):
    track = track_from_bytes(fmt, data, lang, SubtitlesConfig())
    assert texts(track) == expected
    assert track["encoding"] in ({encoding} if isinstance(encoding, str) else encoding)
    assert track["repairs"] == 0


def test_the_operator_records_encodings_per_track():
    item = VideoItem("v", "", 0, raw_tracks={
        "ru": RawTrack("srt", srt(RECIPES["ru"]).encode("cp1251"), "manual", "ru"),
        "zh": RawTrack("vtt", codecs.BOM_UTF16_LE + vtt(RECIPES["zh"]).encode("utf-16-le"), "manual", "zh"),
        "fr": RawTrack("srt", srt(RECIPES["fr"]).encode("utf-8"), "manual", "fr"),
    })
    [out] = ParseSubtitles(SubtitlesConfig(), LANGS).process_batch([item])
    assert out.ok and out.track_errors == {}
    assert {lang: t.encoding for lang, t in out.tracks.items()} == {"ru": "cp1251", "zh": "utf-16-le", "fr": "utf-8"}
    assert [c[2] for c in out.tracks["ru"].cues] == RECIPES["ru"]


def test_the_claimed_language_picks_the_code_page():
    """The same bytes mean different text in different code pages; the track's language
    decides. Without the claim, the detector alone misreads these."""
    for lang, encoding in [("cs", "iso8859_2"), ("ru", "mac_cyrillic")]:
        data = srt(RECIPES[lang]).encode(encoding)
        assert texts(track_from_bytes("srt", data, "")) != RECIPES[lang], lang
        assert texts(track_from_bytes("srt", data, lang)) == RECIPES[lang], lang
    koi8 = vtt(RECIPES["ru"]).encode("koi8_r")  # cp1251 decodes these bytes too, as Cyrillic gibberish
    track = track_from_bytes("vtt", koi8, "ru")
    assert (track["encoding"], texts(track)) == ("koi8-r", RECIPES["ru"])


def test_between_clean_readings_letters_then_lid_decide():
    """Code pages that both decode a file: the language's own letters decide (ISO-8859-2
    read as cp1250 turns š into ą); where both readings are all letters of the script
    (KOI8-R read as cp1251 is all Cyrillic, GB2312 read as Big5 all Han), LID does,
    whatever order the detector gave them in."""
    iso = srt(RECIPES["cs"]).encode("iso8859_2")
    assert choose_encoding(iso, ["cp1250", "iso8859-2"], "cs") == "iso8859-2"
    koi8 = srt(RECIPES["ru"]).encode("koi8_r")
    assert choose_encoding(koi8, ["cp1251", "koi8-r"], "ru") == "koi8-r"
    assert choose_encoding(srt(RECIPES["ru"]).encode("cp1251"), ["koi8-r", "cp1251"], "ru") == "cp1251"
    gb = srt([RECIPES["zh"][i] for i in (0, 2, 4, 5)]).encode("gb2312")
    gb.decode("big5")  # these lines are valid Big5 too
    assert choose_encoding(gb, ["big5", "gb18030"], "zh") == "gb18030"
    latin = srt(RECIPES["de"]).encode("latin-1")  # the same text either way: the detector's order stands
    assert choose_encoding(latin, ["cp1252", "iso8859-1"], "de") == "cp1252"


def double_encoded(text: str) -> str:
    """UTF-8 read as cp1252 (as Windows tools do) and saved again as UTF-8."""
    return text.encode("utf-8").decode("cp1252", errors="replace")


def test_double_encoded_text_is_repaired_and_counted():
    lines = ["ÉVÉNEMENTS À VENIR", *RECIPES["fr"][1:]]
    mangled = [double_encoded(t) for t in lines]
    assert mangled[0] == "Ã‰VÃ‰NEMENTS Ã€ VENIR"
    data = vtt(mangled).encode("utf-8")
    track = track_from_bytes("vtt", data, "fr")
    assert texts(track) == lines
    assert track["encoding"] == "utf-8" and track["repairs"] == len(lines)
    # the same through a BOM'd UTF-16 file, and from the file on disk
    track = track_from_bytes("srt", codecs.BOM_UTF16_LE + srt(mangled).encode("utf-16-le"), "fr")
    assert texts(track) == lines and track["repairs"] == len(lines)


def test_mojibake_that_cannot_be_mended_is_dropped_not_shipped():
    """Russian UTF-8 read as cp1252 loses the bytes cp1252 has no character for (the
    0x8F of "я"); what is left cannot be mended, and is dropped with a count."""
    good = RECIPES["ru"][1:4]
    lossy = double_encoded(RECIPES["ru"][0])  # "Сегодня ..." -> "Ð¡ÐµÐ³Ð¾Ð´Ð½Ñ\ufffd ..."
    track = track_from_bytes("srt", srt([lossy, *good]).encode("utf-8"), "ru")
    assert texts(track) == good
    assert track["dropped_cues"] == {"mojibake": 1}
    with pytest.raises(CaptionFormatError) as err:
        track_from_bytes("srt", srt([lossy]).encode("utf-8"), "ru")
    assert err.value.reason == "mojibake"


def test_genuine_text_in_every_language_is_never_repaired():
    for lang, lines in RECIPES.items():
        track = track_from_bytes("vtt", vtt(lines).encode("utf-8"), lang)
        assert texts(track) == lines and track["repairs"] == 0 and track["dropped_cues"] == {}, lang


# --- markup (#15.6) ---


def test_ass_override_tags_in_srt_are_stripped():
    track = read_track(str(DATA / "ass_tags.en.srt"), "en")
    assert texts(track) == [
        "Preheat the oven to 200 degrees.",
        "Mix the flour and the butter.",
        "Knead for ten minutes, until the dough is smooth.",
    ]


def test_ruby_keeps_the_base_text_and_spans_keep_theirs():
    track = read_track(str(DATA / "ruby.zh.vtt"), "zh")
    assert texts(track) == ["今天我们学写汉字。", "先写横，再写竖。", "Stroke order 也就是笔顺。"]


def test_srt_without_cue_numbers_is_read():
    track = read_track(str(DATA / "unnumbered.de.srt"), "de")
    assert texts(track) == [
        "Heute backen wir einen Apfelkuchen.",
        "Schälen Sie die Äpfel und schneiden Sie sie in Stücke.",
        "Dann den Teig ausrollen.",
    ]
    assert [c[:2] for c in track["cues"]] == [[0.5, 2.8], [3.0, 5.5], [6.0, 8.2]]


def test_markup_normalisation():
    assert normalise_text(r"{\an8}{\pos(10,20)}Line one\Nline two\hend") == "Line one line two end"
    assert normalise_text(r"{\i1}italic{\i0} and {\fs20\c&HFF0000&}blue") == "italic and blue"
    assert normalise_text("<ruby>漢<rp>(</rp><rt>kan</rt><rp>)</rp>字<rt>ji</rt></ruby>") == "漢字"
    assert normalise_text("<ruby>東<rt>とう</ruby>京") == "東京"  # </rt> implied by </ruby>
    assert normalise_text("<v.loud Esme>Hi</v> <lang fr>merci</lang>") == "Hi merci"


# --- caps (#14.6) ---

ELEVEN_YEARS = b"WEBVTT\n\n00:00:00.000 --> 99999:59:59.999\nThis cue claims to run for eleven years.\n"


def test_a_cue_of_99999_hours_plans_nothing():
    assert len(ELEVEN_YEARS) <= 82
    item = VideoItem("v", "", 0, raw_tracks={"en": RawTrack("vtt", ELEVEN_YEARS, "manual", "en")})
    [out] = ParseSubtitles(SubtitlesConfig(), LANGS).process_batch([item])
    assert out.status == "failed" and out.failure.reason == "no_subtitles"
    assert "en=cue_too_long" in out.failure.detail
    # next to ordinary cues, the long one is dropped and counted
    data = vtt(RECIPES["de"][:3]).encode() + b"\n00:00:07.000 --> 99999:59:59.999\nNie endend.\n"
    track = track_from_bytes("vtt", data, "de")
    assert texts(track) == RECIPES["de"][:3] and track["dropped_cues"] == {"cue_too_long": 1}
    assert max(end for _, end, _ in track["cues"]) < 60
    srt_data = b"00:00:00,000 --> 99999:59:59,999\nForever.\n\n00:00:01,000 --> 00:00:02,000\nOnce.\n"
    assert texts(track_from_bytes("srt", srt_data, "en")) == ["Once."]
    json3 = {"events": [{"tStartMs": 0, "dDurationMs": 359_999_999_999, "segs": [{"utf8": "Forever"}]}]}
    with pytest.raises(CaptionFormatError) as err:
        track_from_bytes("json3", json.dumps(json3).encode(), "en")
    assert err.value.reason == "cue_too_long"


def test_max_cue_s_comes_from_the_profile():
    data = b"WEBVTT\n\n00:00:00.000 --> 00:02:00.000\nA two-minute title card.\n"
    with pytest.raises(CaptionFormatError):
        track_from_bytes("vtt", data, "en")
    assert texts(track_from_bytes("vtt", data, "en", SubtitlesConfig(max_cue_s=300))) == ["A two-minute title card."]


def many_cues(fmt: str, n: int) -> bytes:
    if fmt == "vtt":
        return b"WEBVTT\n\n" + b"00:00:01.000 --> 00:00:02.000\nx\n\n" * n
    if fmt == "srt":
        return b"00:00:01,000 --> 00:00:02,000\nx\n\n" * n
    return b'{"events": [' + b",".join([b'{"tStartMs": 1, "segs": [{"utf8": "x"}]}'] * n) + b"]}"


@pytest.mark.parametrize("fmt", ["vtt", "srt", "json3"])
def test_a_million_cue_track_is_refused(fmt):
    data = many_cues(fmt, 1_000_000)
    with pytest.raises(CaptionFormatError) as err:
        track_from_bytes(fmt, data, "en")  # the default 5 MiB cap, before decoding
    assert err.value.reason == "track_too_large"
    if fmt == "json3":
        # json3 has no cheap count before json.loads, so its memory is bounded by the
        # byte cap; within it, too many events are refused before any cue is built
        with pytest.raises(CaptionFormatError) as err:
            track_from_bytes(fmt, many_cues(fmt, 30_000), "en")
        assert err.value.reason == "too_many_cues"
        return
    roomy = SubtitlesConfig(max_track_bytes=2**30)
    tracemalloc.start()
    try:
        with pytest.raises(CaptionFormatError) as err:
            track_from_bytes(fmt, data, "en", roomy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.reason == "too_many_cues"
    assert peak < 2 * len(data)  # counted before parsing: the decoded text and little else


def test_a_large_file_is_refused_unread(tmp_path):
    path = tmp_path / "big.vtt"
    path.write_bytes(many_cues("vtt", 1_000_000))
    with pytest.raises(CaptionFormatError) as err:
        parse_caption_file(path, "en")
    assert err.value.reason == "track_too_large" and "big.vtt" in str(err.value)


def test_caps_are_validated_by_name():
    for field, value in [("max_track_bytes", 0), ("max_cues", -1), ("max_cue_s", float("nan")), ("max_cue_s", 0.01)]:
        cfg = dataclasses.replace(RegionConfig(), subtitles=SubtitlesConfig(**{field: value}))
        with pytest.raises(ConfigError, match=f"subtitles.{field}"):
            validate(cfg)


# --- control characters (#14.10) ---


def test_nul_and_control_characters_never_reach_clip_text():
    dirty = "Mix\x00 the flour\x01 and\x7f the\x1b water,\x0b then\x0c knead."
    clean = "Mix the flour and the water, then knead."
    assert normalise_text(dirty) == clean
    assert normalise_text("a\x80b\x9fc\ufeffd") == "abcd"  # C1 and a stray BOM
    vtt_data = vtt([dirty, "Zweite\x00Zeile"]).encode()
    assert texts(track_from_bytes("vtt", vtt_data, "en")) == [clean, "ZweiteZeile"]
    json3 = {"events": [{"tStartMs": 0, "dDurationMs": 2000, "segs": [{"utf8": "NUL\u0000 in\u0007 json3"}]}]}
    assert texts(track_from_bytes("json3", json.dumps(json3).encode(), "en")) == ["NUL in json3"]
    srt_data = srt(["tab\tand\x00nul"]).encode()
    assert texts(track_from_bytes("srt", srt_data, "en")) == ["tab andnul"]


def test_released_how2_captions_obey_the_same_caps_and_cleaning():
    entry = {"start": [0.0, 3.0], "end": [2.5, 359_999_999.0], "text": ["Mix\x00 the {\\i1}flour", "Forever."]}
    track = how2_track(entry)
    assert texts(track) == ["Mix the flour"] and track["dropped_cues"] == {"cue_too_long": 1}
    with pytest.raises(CaptionFormatError) as err:
        how2_track({"start": [0.0], "end": [1e9], "text": ["Forever."]})
    assert err.value.reason == "cue_too_long"
    many = {"start": [0.0] * 5, "end": [1.0] * 5, "text": ["x"] * 5}
    with pytest.raises(CaptionFormatError) as err:
        how2_track(many, cfg=SubtitlesConfig(max_cues=4))
    assert err.value.reason == "too_many_cues"
