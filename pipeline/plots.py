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
    ax.boxplot([s.lid_scores.get(lang, []) or [0.0] for lang in LANGS], tick_labels=list(LANGS))
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
