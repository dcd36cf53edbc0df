"""The dataset card's plots, drawn from a :class:`DatasetSummary` and written as PNGs
under ``_report/`` through the storage layer."""

from __future__ import annotations

import io
from collections import Counter

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from multihowto.pipeline.storage import Storage  # noqa: E402
from multihowto.pipeline.summary import DatasetSummary  # noqa: E402
from multihowto.schemas.index import REPORT_DIR  # noqa: E402
from multihowto.schemas.sample import LANGS  # noqa: E402


def box_stats(edges: list[float], counts: list[int] | None, label: str) -> dict:
    """A box (quartiles, 5th and 95th percentile whiskers) from binned counts, each
    value at its bin's middle; all zero when there are none."""
    if not counts or not sum(counts):
        return {"label": label, "med": 0.0, "q1": 0.0, "q3": 0.0, "whislo": 0.0, "whishi": 0.0}
    mids = (np.asarray(edges[:-1]) + np.asarray(edges[1:])) / 2
    cum = np.cumsum(counts) / sum(counts)

    def at(q: float) -> float:
        return float(mids[np.searchsorted(cum, q)])

    return {"label": label, "med": at(0.5), "q1": at(0.25), "q3": at(0.75), "whislo": at(0.05), "whishi": at(0.95)}


def write_plots(s: DatasetSummary, storage: Storage) -> dict[str, str]:
    """Draw the four plots into ``storage``; returns {file name: name relative to the root}."""
    files = {}

    def save(fig, name: str) -> None:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        files[name] = f"{REPORT_DIR}/{name}"
        storage.put_bytes(buf.getvalue(), files[name])

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(LANGS), [s.clips_per_lang[lang] for lang in LANGS], color="#4477aa")
    ax.axhline(s.clips, color="grey", linestyle="--", label="all clips")
    ax.set_ylabel("clips")
    ax.set_title("Clips per language")
    ax.legend()
    save(fig, "clips_per_lang.png")

    edges, counts = np.asarray(s.duration_edges), np.asarray(s.duration_counts)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.stairs(counts, edges, fill=True, color="#228833")
    used = np.nonzero(counts)[0]
    ax.set_xlim(0, edges[used[-1] + 1] + 0.5 if len(used) else edges[-1])
    ax.set_xlabel("clip length (s)")
    ax.set_ylabel("clips")
    ax.set_title("Clip lengths")
    save(fig, "clip_lengths.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bxp([box_stats(s.lid_score_edges, s.lid_score_counts.get(lang), lang) for lang in LANGS], showfliers=False)
    ax.set_ylabel("fastText score of the track")
    ax.set_title("Language ID score per language (accepted tracks)")
    save(fig, "lid_scores.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    reasons = s.failures + Counter({f"lid {lang}: {r}": n for lang, c in s.lid_rejected.items() for r, n in c.items()})
    names = list(reasons) or ["none"]
    ax.barh(names, [reasons[n] for n in names] if reasons else [0], color="#cc6677")
    ax.set_xlabel("count")
    ax.set_title("Failures and rejected tracks by reason")
    save(fig, "failures.png")
    return files
