"""The trainer's fixture: the pipeline's sample shards and a tokenizer trained on them."""

import pytest

from multihowto.trainer.tokenizer import corpus_texts, train_tokenizer


@pytest.fixture(scope="session")
def shards(built_dataset, tmp_path_factory):
    """(dataset folder, tokenizer model path)."""
    _, out, _ = built_dataset
    tok = train_tokenizer(corpus_texts(out), tmp_path_factory.mktemp("tok") / "spm.model", vocab_size=300)
    return out, tok
