"""A sentencepiece tokenizer shared by all nine languages, trained on the corpus.

Text comes from the shards' parquet indexes (``text_{lang}`` columns: no tar is read).
Sampling is balanced: every language contributes the same number of sentences (the
smaller ones repeated), so Swahili and Czech get as much of the vocabulary as English.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import torch

from multihowto.pipeline.storage import as_storage
from multihowto.pipeline.summary import committed_shards, read_index
from multihowto.schemas.sample import LANGS

PAD, UNK, BOS, EOS = 0, 1, 2, 3


def corpus_texts(dataset: str | Path, langs: tuple[str, ...] = LANGS, videos: set[str] | None = None) -> dict[str, list[str]]:
    """Every clip text per language from the committed shards' indexes (a local folder
    or ``s3://`` prefix; only the text columns are read)."""
    out: dict[str, list[str]] = {lang: [] for lang in langs}
    storage = as_storage(dataset)
    for index in committed_shards(storage):
        table = read_index(storage, index, ["video_id", *[f"text_{lang}" for lang in langs]]).to_pylist()
        for row in table:
            if videos is not None and row["video_id"] not in videos:
                continue
            for lang in langs:
                if row[f"text_{lang}"]:
                    out[lang].append(row[f"text_{lang}"])
    return out


def train_tokenizer(texts: dict[str, list[str]], model_path: str | Path, vocab_size: int = 4000, seed: int = 0) -> Path:
    """Train a unigram sentencepiece model on balanced per-language samples; writes
    ``model_path`` (``.model``) and returns it."""
    import sentencepiece as spm

    present = {lang: t for lang, t in texts.items() if t}
    if not present:
        raise ValueError("no text to train a tokenizer on")
    per_lang = max(len(t) for t in present.values())
    rng = random.Random(seed)
    lines = []
    for _lang, t in sorted(present.items()):
        lines += [t[i % len(t)] for i in range(per_lang)]
    rng.shuffle(lines)
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
        f.write("\n".join(lines))
        corpus = f.name
    spm.SentencePieceTrainer.train(
        input=corpus,
        model_prefix=str(model_path.with_suffix("")),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,  # every character of every script stays in the vocabulary (no UNK for rare CJK)
        pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
        hard_vocab_limit=False,
        num_threads=2,
        minloglevel=2,
    )
    Path(corpus).unlink()
    return model_path.with_suffix(".model")


class Tokenizer:
    def __init__(self, model_path: str | Path):
        import sentencepiece as spm

        if not Path(model_path).is_file():
            raise FileNotFoundError(f"no tokenizer at {model_path}; train one with `mhowto tokenizer`")
        self.sp = spm.SentencePieceProcessor(model_file=str(model_path))
        self.vocab_size = self.sp.get_piece_size()

    def encode(self, texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, max_len) padded with PAD, and the mask of real tokens."""
        ids = torch.full((len(texts), max_len), PAD, dtype=torch.long)
        for i, ids_i in enumerate(self.sp.encode(texts)):
            ids_i = [BOS, *ids_i][: max_len - 1] + [EOS]
            ids[i, : len(ids_i)] = torch.tensor(ids_i)
        return ids, ids != PAD
