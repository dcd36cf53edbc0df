"""The trainer's loader streaming shards from S3 (moto's server on 127.0.0.1, boto3's
real HTTP requests), against the same shards read from local disk."""

from pathlib import Path

import pytest
import torch

from multihowto.trainer.data import (
    ClipDataset,
    DataConfig,
    clip_stream,
    collate,
    open_shard,
    shard_urls,
)
from multihowto.trainer.tokenizer import corpus_texts, train_tokenizer
from multihowto.trainer.train import TrainConfig, train


@pytest.mark.slow
def test_loader_streams_a_dataset_from_s3(s3, built_dataset, tmp_path):
    import boto3

    _, out, _ = built_dataset
    client = boto3.client("s3", endpoint_url=s3)
    for f in sorted(Path(out).iterdir()):
        if f.is_file():
            client.upload_file(str(f), "mhowto", f"loader/run1/{f.name}")
    # a tar without its index is a shard that never committed: the loader must skip it
    client.put_object(Bucket="mhowto", Key="loader/run1/shard-999999.tar", Body=b"partial upload")

    local = {c["key"]: c["texts"] for c in clip_stream(DataConfig(shards=str(out), lang_mode="all", shuffle=0))}
    urls = shard_urls("s3://mhowto/loader/run1")
    assert [u.rsplit("/", 1)[1] for u in urls] == [Path(u).name for u in shard_urls(str(out))]
    remote = {c["key"]: c["texts"] for c in clip_stream(DataConfig(shards="s3://mhowto/loader/run1/", lang_mode="all", shuffle=0))}
    assert len(local) > 20 and remote == local

    # a brace pattern over S3, shuffled, through two DataLoader workers: every clip once
    first, last = (u.rsplit("shard-", 1)[1].removesuffix(".tar") for u in (urls[0], urls[-1]))
    ds = ClipDataset(DataConfig(shards=f"s3://mhowto/loader/run1/shard-{{{first}..{last}}}.tar", shuffle=20, seed=3))
    keys = [k for b in torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate) for k in b["key"]]
    assert sorted(keys) == sorted(local)

    # and the trainer reads it as it reads a local dataset
    tok = train_tokenizer(corpus_texts(out), tmp_path / "spm.model", vocab_size=300)
    summary = train(TrainConfig(data="s3://mhowto/loader/run1", tokenizer=str(tok), out_dir=str(tmp_path / "run"), steps=3,
                                batch_size=8, log_every=1), log=lambda *_: None)
    assert summary["steps"] == 3 and summary["clips"] == len(local)


def test_shard_urls_never_reach_a_shell(tmp_path):
    for url in ("pipe:cat /etc/passwd", "http://127.0.0.1/shard-000000.tar"):
        with pytest.raises(ValueError, match="local paths or s3://"):
            open_shard(url)
    shard = tmp_path / "shard-000000.tar"
    shard.write_bytes(b"x")
    with open_shard(f"file://{shard}") as f:
        assert f.read() == b"x"
