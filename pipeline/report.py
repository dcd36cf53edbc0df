"""The dataset card: ``README.md`` rendered from the :class:`DatasetSummary` and
published next to the shards, with its plots (pipeline/plots.py) and the how2 caption
exports (pipeline/how2.py), all written through the storage layer, local or S3.

Every value the card quotes from input (video ids, error details, rejected manifest
values, reasons) goes through :func:`quote_md`, so it renders as text, never as markup.
"""

from __future__ import annotations

from multihowto.pipeline.how2 import export_how2
from multihowto.pipeline.plots import write_plots
from multihowto.pipeline.quoting import quote_md as q
from multihowto.pipeline.storage import as_storage
from multihowto.pipeline.summary import DatasetSummary, label, summarise
from multihowto.schemas.index import CARD_FILE
from multihowto.schemas.sample import LANGS

# The card lists this many failed videos and rejected rows; the rest are counted.
LIST_LIMIT = 50


def _counts(c) -> str:
    return ", ".join(f"{q(r)}: {n}" for r, n in sorted(c.items())) or "0"


def render_card(s: DatasetSummary, plots: dict[str, str]) -> str:
    """The card's markdown; ``plots`` maps plot file names to their paths in the dataset."""
    lines = [
        "# multihowto dataset card",
        "",
        f"- shards: {s.shards}  (WebDataset tar + parquet index + stats json each)",
        f"- videos: {s.videos['total']} planned, {s.videos['ok']} ok, {s.videos['failed']} failed; {s.videos_with_clips} with clips",
        f"- clips: {s.clips}  ({s.clip_seconds / 60:.1f} minutes)",
        f"- manifest rows rejected: {len(s.rejected_rows)}",
        "",
        "## Clips per language",
        "",
        "| lang | clips | coverage |",
        "|---|---|---|",
    ]
    for lang in LANGS:
        n = s.clips_per_lang[lang]
        lines.append(f"| {lang} | {n} | {100 * n / max(1, s.clips):.1f}% |")
    lines += ["", f"![clips per language]({plots['clips_per_lang.png']})", ""]
    lines += ["## Language ID", "", "| lang | rejected tracks | uncertain tracks (kept, flagged) |", "|---|---|---|"]
    for lang in LANGS:
        lines.append(f"| {lang} | {_counts(s.lid_rejected.get(lang, {}))} | {s.lid_uncertain.get(lang, 0)} |")
    lines += ["", f"![LID scores]({plots['lid_scores.png']})", ""]
    lines += ["## Missing languages (videos without a usable track)", ""]
    lines += [f"- {lang}: {_counts(s.missing_langs[lang])}" for lang in LANGS if s.missing_langs.get(lang)] or ["- none"]
    if any(s.track_errors.values()):
        lines += ["", "## Track errors", ""]
        lines += [f"- {q(lang)}: {_counts(c)}" for lang, c in sorted(s.track_errors.items()) if c]
    lines += ["", "## Failures by reason", ""]
    for reason, n in s.failures.most_common():
        lines.append(f"- {q(reason)}: {n}")
    for v in s.failed_videos[:LIST_LIMIT]:
        lines.append(f"  - {q(v.video_id)} at {q(v.stage)}: {q(v.reason)}" + (f": {q(v.detail)}" if v.detail else ""))
    if len(s.failed_videos) > LIST_LIMIT:
        lines.append(f"  - ... and {len(s.failed_videos) - LIST_LIMIT} more failed videos")
    for row in s.rejected_rows[:LIST_LIMIT]:
        lines.append(f"- manifest line {row.line}: {q(row.reason)} ({q(row.value)})")
    if len(s.rejected_rows) > LIST_LIMIT:
        lines.append(f"- ... and {len(s.rejected_rows) - LIST_LIMIT} more rejected manifest rows")
    if not s.failures and not s.rejected_rows:
        lines.append("- none")
    if s.retries:
        lines += ["", f"Retried (transient, counted once per retry): {_counts(s.retries)}"]
    lines += ["", f"![failures]({plots['failures.png']})", "", "## Clip lengths", "", f"![clip lengths]({plots['clip_lengths.png']})", ""]
    if s.totals or any(s.counters.values()):
        lines += ["## Other counts", ""]
        lines += [f"- {q(label(k))}: {v:g}" for k, v in sorted(s.totals.items())]
        lines += [f"- {q(label(k))}: {_counts(c)}" for k, c in sorted(s.counters.items()) if c]
        lines.append("")
    lines += ["## Stage time (summed over videos, seconds)", ""]
    for stage, secs in s.timings_s.items():
        lines.append(f"- {q(stage)}: {secs:.2f}")
    return "\n".join(lines) + "\n"


def write_report(storage) -> str:
    """Write the card, its plots and the how2 exports into ``storage`` (a Storage, a
    local path or an ``s3://`` URI); returns the card's markdown."""
    storage = as_storage(storage)
    s = summarise(storage)
    export_how2(storage)
    card = render_card(s, write_plots(s, storage))
    storage.put_bytes(card.encode("utf-8"), CARD_FILE)
    return card


def publish_report(storage, cfg_name: str = "") -> str:
    """``write_report`` under its older name (``cfg_name`` is no longer needed: nothing
    is copied under ./build)."""
    return write_report(storage)
