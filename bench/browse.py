"""Clip page latency of ``mhowto browse`` on a built dataset: median and p95.

The app runs in this process on 127.0.0.1 (uvicorn, as ``mhowto browse`` runs it); one
keep-alive HTTP connection asks for each clip's page and then each of its frames, as a
browser would, clips spread evenly over the dataset and each visited once (so every
page pays its ranged read of the clip's tar span). The limit beside it is that ranged
read alone, through the same storage layer.

    python bench/browse.py build/bench/e2e-.../   # or bench_browse(path) from bench/run.py
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
from pathlib import Path

import numpy as np


def _ms(samples: list[float]) -> dict:
    a = np.asarray(samples) * 1000
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max()), "n": len(a)}


def bench_browse(dataset_path: str | Path, clips: int = 60) -> dict:
    """Latency (ms) of a clip page, and of the page with all its frames, over up to
    ``clips`` clips of the dataset at ``dataset_path`` (a folder or ``s3://`` URI)."""
    from multihowto.pipeline.browse import create_app, running
    from multihowto.pipeline.dataset_view import DatasetView
    from multihowto.pipeline.storage import open_storage
    from multihowto.schemas.index import TAR_SUFFIX

    view = DatasetView(open_storage(str(dataset_path), create=False))
    rows = [(shard, r) for shard in view.shards() for r in view.index(shard)]
    if len(rows) < 2:
        raise ValueError(f"{dataset_path}: fewer than 2 clips to measure")
    picks = [rows[int(i)] for i in np.linspace(1, len(rows) - 1, min(clips, len(rows) - 1))]
    view = DatasetView(view.storage)  # a fresh process's view: nothing cached
    page_s, full_s = [], []
    with running(create_app(view)) as base:
        conn = http.client.HTTPConnection(base.split("//", 1)[1], timeout=60)
        conn.connect()  # without TCP_NODELAY (browsers set it) Nagle adds ~40 ms a request
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def get(path: str) -> bytes:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {resp.status}")
            return body

        t = time.perf_counter()
        get(f"/clip/{rows[0][1]['key']}")  # the first request also reads every shard's stats
        first_s = time.perf_counter() - t
        for _, row in picks:
            t = time.perf_counter()
            get(f"/clip/{row['key']}")
            page_s.append(time.perf_counter() - t)
            for i in range(row["n_frames"]):
                get(f"/clip/{row['key']}/frame/{i}.jpg")
            full_s.append(time.perf_counter() - t)
        conn.close()
    read_s = []
    for shard, row in picks:
        t = time.perf_counter()
        view.storage.get_range(shard + TAR_SUFFIX, row["tar_offset"], row["tar_size"])
        read_s.append(time.perf_counter() - t)
    return {
        "dataset": str(dataset_path),
        "shards": len(view.shards()),
        "clips_in_dataset": len(rows),
        "clips_measured": len(picks),
        "first_request_ms": first_s * 1000,
        "clip_page_ms": _ms(page_s),
        "clip_page_with_frames_ms": _ms(full_s),
        "span_read_ms": _ms(read_s),
        "mean_span_kb": float(np.mean([r["tar_size"] for _, r in picks]) / 1024),
    }


def fmt_browse(r: dict) -> str:
    p, f, s = r["clip_page_ms"], r["clip_page_with_frames_ms"], r["span_read_ms"]
    return (f"clip page {p['median']:.1f} ms median, {p['p95']:.1f} ms p95; with its frames "
            f"{f['median']:.1f} / {f['p95']:.1f} ms ({r['clips_measured']} of {r['clips_in_dataset']} clips, "
            f"{r['shards']} shards; the span's ranged read alone {s['median']:.2f} ms, {r['mean_span_kb']:.0f} KiB)")


if __name__ == "__main__":
    result = bench_browse(sys.argv[1] if len(sys.argv) > 1 else "data/local")
    print("  browse   " + fmt_browse(result))
    print(json.dumps(result, indent=1))
