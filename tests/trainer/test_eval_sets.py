"""The eval-set loaders on small fixtures in the released formats, and an evaluation
through real media files."""

import subprocess

import pytest

from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.sample_site.material import footage_paths
from multihowto.trainer.eval_sets import evaluate_set, load_multi30k, load_multi_msrvtt, load_vatex
from multihowto.trainer.model import ModelConfig, VideoTextModel
from multihowto.trainer.tokenizer import Tokenizer, train_tokenizer
from tests.conftest import DATA

SETS = DATA / "evalsets"


def test_multi_msrvtt():
    s = load_multi_msrvtt(SETS / "MSRVTT_JSFUSION_test.csv")
    assert s.items == ["video7579", "video7725", "video9258"]
    assert set(s.queries) == {"en", "de", "zh"}
    assert s.queries["de"][2] == (2, "eine Person benutzt ein Telefon")
    assert s.queries["zh"][1][1].startswith("年轻人")


def test_vatex_every_caption_is_a_query():
    s = load_vatex(SETS / "vatex_public_test_english_v1.1.json")
    assert s.items == ["G9zN5TTuGO4_000179_000189", "kBI7FHsSN2E_000017_000027"]
    assert [i for i, _ in s.queries["en"]] == [0, 0, 1, 1] and len(s.queries["zh"]) == 4


def test_multi30k_aligned_files():
    s = load_multi30k(SETS / "multi30k")
    assert s.media == "image" and len(s.items) == 3 and set(s.queries) == {"en", "de", "fr", "cs"}
    assert s.queries["cs"][0][0] == 0


def test_misaligned_multi30k_is_refused(tmp_path):
    (tmp_path / "t.txt").write_text("a.jpg\nb.jpg\n")
    (tmp_path / "t.en").write_text("only one\n")
    with pytest.raises(ValueError, match="1 captions for 2 images"):
        load_multi30k(tmp_path, split="t")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    src = [p for p in footage_paths() if p.name == "bikes.mp4"][0]
    for i, vid in enumerate(["video7579", "video7725", "video9258"]):
        subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", str(2 * i), "-i", str(src), "-t", "2", "-an", str(folder / f"{vid}.mp4")], check=True)
    for i, img in enumerate(["1000092795.jpg", "10002456.jpg", "1000268201.jpg"]):
        subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", str(i), "-i", str(src), "-frames:v", "1", str(folder / img)], check=True)
    return folder


def test_evaluate_set_through_real_media(media, tmp_path):
    msr, m30k = load_multi_msrvtt(SETS / "MSRVTT_JSFUSION_test.csv"), load_multi30k(SETS / "multi30k")
    texts = {lang: [t for _, t in q] for s in (msr, m30k) for lang, q in s.queries.items()}
    tok = Tokenizer(train_tokenizer(texts, tmp_path / "spm.model", vocab_size=200))
    model = VideoTextModel(ModelConfig(vocab_size=tok.vocab_size, d_model=32, n_heads=2, n_frames=2, frame_size=32, embed_dim=16))
    for s in (msr, m30k):
        res = evaluate_set(model, tok, s, media)
        assert set(res) == set(s.queries)
        for lang, r in res.items():
            assert r["t2v"]["n"] == len(s.queries[lang]) and r["v2t"]["n"] == len(s.items)
            assert r["t2v"]["R@10"] == 100.0  # three items: every rank is within 10
            assert 1 <= r["t2v"]["MedR"] <= 3
