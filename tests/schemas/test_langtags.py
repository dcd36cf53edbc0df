"""Language tags as sites write them, to the nine target languages (#15.4)."""

import pytest

from multihowto.schemas.langtags import target_lang, track_rank


@pytest.mark.parametrize("tag,lang", [
    ("en", "en"), ("EN", "en"), ("en-US", "en"), ("en_GB", "en"), ("en-orig", "en"), ("en-x-autogen", "en"),
    ("de-DE", "de"), ("fr-CA", "fr"), ("ru-RU", "ru"), ("es-419", "es"), ("cs-CZ", "cs"), ("sw-KE", "sw"),
    ("vi-VN", "vi"), ("zh", "zh"), ("zh-Hans", "zh"), ("zh-CN", "zh"), ("zh-Hans-CN", "zh"), ("zh-SG", "zh"),
    ("zh-Hant", "zh"), ("zh-TW", "zh"), ("zh-HK", "zh"), ("cmn", "zh"), ("zho", "zh"), ("ces", "cs"),
    ("pt", None), ("pt-BR", None), ("yue", None), ("zh-yue", None), ("ru-Latn", None), ("sr", None),
    ("", None), ("a.en", None), ("live_chat", None), ("und", None),
])
def test_target_lang(tag, lang):
    assert target_lang(tag) == lang


def test_rank_manual_then_simplified_then_plain():
    def best(*tracks):
        return min(tracks, key=lambda t: track_rank(*t))

    assert best(("en-US", "manual"), ("en", "asr")) == ("en-US", "manual")  # manual before ASR
    assert best(("en-US", "manual"), ("EN", "manual")) == ("EN", "manual")  # plain before a region
    assert best(("en-orig", "asr"), ("en", "asr")) == ("en", "asr")
    assert best(("zh-Hant", "manual"), ("zh-Hans", "manual")) == ("zh-Hans", "manual")
    assert best(("zh-TW", "manual"), ("zh-CN", "manual"), ("zh", "manual")) == ("zh", "manual")
    assert best(("zh-Hant", "manual"), ("zh-Hans", "asr")) == ("zh-Hant", "manual")  # manual still first
