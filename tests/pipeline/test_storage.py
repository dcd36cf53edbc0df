"""The one storage layer, on a real local folder and on moto's S3 server on 127.0.0.1:
URI parsing, ranged and random-access reads (pyarrow reading one column of a remote
parquet fetches a fraction of it), create-if-absent under a race, one boto3 client per
process."""

import io
import multiprocessing
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from multihowto.pipeline import storage as storage_mod
from multihowto.pipeline.storage import (
    LocalStorage,
    Location,
    S3Storage,
    locate,
    open_storage,
    open_url,
    parse_uri,
    s3_client,
)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "ds")
    endpoint = request.getfixturevalue("s3")
    return S3Storage(f"s3://mhowto/storage-test/{tmp_path.name}", endpoint)


def test_uris_are_parsed_in_one_place():
    assert parse_uri("s3://bkt/a/b/") == Location("s3", "a/b", "bkt")
    assert parse_uri("s3://bkt") == Location("s3", "", "bkt")
    assert parse_uri("file:///data/x") == Location("file", "/data/x")
    assert parse_uri("data/local") == Location("file", "data/local")
    for bad in ("http://127.0.0.1/x.tar", "pipe:cat /etc/passwd", "data:text/plain,x", "gs://b/k"):
        with pytest.raises(ValueError, match="local paths or s3://"):
            parse_uri(bad)
    with pytest.raises(ValueError, match="s3://bucket"):
        parse_uri("s3:///key")


def test_ranged_reads_and_streams(store):
    data = bytes(range(256)) * 40
    store.put_bytes(data, "blob.bin")
    assert store.size("blob.bin") == len(data)
    assert store.get_range("blob.bin", 1000, 300) == data[1000:1300]
    assert store.get_range("blob.bin", len(data) - 10, 100) == data[-10:]  # short at the end
    assert store.get_range("blob.bin", len(data) + 5, 10) == b"" and store.get_range("blob.bin", 0, 0) == b""
    with store.open_read("blob.bin") as f:
        assert f.read(7) == data[:7] and f.read() == data[7:]
    with store.open_random("blob.bin") as f:
        f.seek(-5, io.SEEK_END)
        assert f.read() == data[-5:]
        f.seek(300)
        assert f.read(4) == data[300:304] and f.tell() == 304
    assert store.url("blob.bin").endswith("/blob.bin") and store.url("blob.bin").startswith(store.uri)
    other, name = locate(store.url("blob.bin"))
    assert name == "blob.bin" and other.get_bytes(name) == data
    with open_url(store.url("blob.bin")) as f:
        assert f.read() == data
    assert store.list() == ["blob.bin"] and store.list("x") == []
    store.delete("blob.bin")
    assert not store.exists("blob.bin") and store.list() == []


def test_pyarrow_reads_one_column_of_a_remote_parquet_by_ranges(s3, tmp_path):
    rng = np.random.default_rng(0)
    n = 8000
    table = pa.table({
        "video_id": [f"vid-{i:05d}" for i in range(n)],
        "blob": [rng.bytes(500) for _ in range(n)],  # incompressible: most of the file
        "duration": rng.random(n),
    })
    pq.write_table(table, tmp_path / "x.parquet", row_group_size=2000)  # 4 row groups of about 1 MB
    size = (tmp_path / "x.parquet").stat().st_size
    store = S3Storage("s3://mhowto/parquet-test", s3)
    store.put_file(tmp_path / "x.parquet", "x.parquet")
    with store.open_random("x.parquet") as f:
        pf = pq.ParquetFile(f)
        got = pf.read(columns=["duration"])
        fetched = f.raw.bytes_fetched
    assert pf.metadata.num_row_groups == 4 and got.column("duration").equals(table.column("duration"))
    assert fetched < size / 4, (fetched, size)


def test_put_if_absent_lets_exactly_one_racer_win(store):
    racers = 8
    barrier, results = threading.Barrier(racers), {}

    def race(i: int) -> None:
        barrier.wait()
        results[i] = store.put_if_absent("_lease.json", f"owner {i}".encode())

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, won in results.items() if won]
    assert len(results) == racers and len(winners) == 1
    assert store.get_bytes("_lease.json") == f"owner {winners[0]}".encode()
    assert store.put_if_absent("_lease.json", b"later") is False
    assert store.list() == ["_lease.json"]  # no temporary file left behind
    store.delete("_lease.json")
    assert store.put_if_absent("_lease.json", b"after release") is True


def test_a_local_writer_makes_its_folder_a_reader_does_not(tmp_path):
    assert open_storage(tmp_path / "r", create=False).list() == [] and not (tmp_path / "r").exists()
    w = open_storage(tmp_path / "w")
    w.put_bytes(b"x", "_report/a.png")
    assert (tmp_path / "w" / "_report" / "a.png").read_bytes() == b"x"
    with pytest.raises(ValueError, match="outside the dataset root"):
        w.get_bytes("../r/x")


def _client_in_child(endpoint: str, parent_pid: int, out) -> None:
    inherited = storage_mod._clients.get((endpoint, "us-east-1", parent_pid))
    mine = s3_client(endpoint)
    out.put((inherited is not None, mine is not inherited, mine is s3_client(endpoint),
             S3Storage("s3://mhowto/child", endpoint).list() == []))


def test_one_client_per_process(s3):
    import os

    assert S3Storage("s3://mhowto/a", s3).client is S3Storage("s3://mhowto/b").client is s3_client(s3)
    # made by many threads at once: still one
    barrier, got = threading.Barrier(8), []

    def make() -> None:
        barrier.wait()
        got.append(s3_client(s3, "eu-north-1"))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(c is got[0] for c in got) and got[0] is not s3_client(s3)
    # a forked process (a DataLoader worker) makes its own, and it works
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_client_in_child, args=(s3, os.getpid(), out))
    child.start()
    result = out.get(timeout=60)
    child.join(timeout=60)
    assert result == (True, True, True, True) and child.exitcode == 0
