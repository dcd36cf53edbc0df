"""The dataset card: aggregate every committed shard's stats and index.

``summarise(root)`` reads only committed shards (those with a parquet index).
``write_report(root)`` writes ``README.md`` with PNG plots under ``_report/`` and the
``how2_{lang}.json`` caption exports in the released Multi-HowTo100M format.

Both go one shard at a time and read only the index columns they need, so the memory
they take grows with the number of videos (a few small fields each), not with the
number of clips or their text.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from multihowto.schemas.index import (
    CARD_FILE,
    INDEX_SUFFIX,
    PLAN_FILE,
    REPORT_DIR,
    STATS_SUFFIX,
    how2_file,
)
from multihowto.schemas.sample import LANGS


def committed_shards(root: Path) -> list[Path]:
    """Index files of committed shards, in shard order."""
    return sorted(p for p in Path(root).glob(f"shard-*{INDEX_SUFFIX}"))


# Clip lengths are counted in fixed bins, shard by shard; longer clips land in the last.
DURATION_EDGES = np.arange(0.0, 30.5, 0.5)


def summarise(root: Path) -> dict:
    """Counts over committed shards: videos by status, failures by reason, clips per
    language, LID rejections and uncertain tracks, missing languages, timings."""
    root = Path(root)
    s = {
        "shards": 0,
        "videos": Counter(),
        "failures": Counter(),
        "retries": Counter(),
        "failed_videos": [],
        "clips": 0,
        "clip_seconds": 0.0,
        "clips_per_lang": Counter(),
        "lid_rejected": defaultdict(Counter),
        "lid_uncertain": Counter(),
        "missing_langs": defaultdict(Counter),
        "track_errors": defaultdict(Counter),
        "timings_s": Counter(),
        "lid_scores": defaultdict(list),  # lang -> the track score of every video that kept it
        "rejected_rows": [],
        "videos_with_clips": 0,
        "duration_counts": np.zeros(len(DURATION_EDGES) - 1, dtype=np.int64),
    }
    latest: dict[str, dict] = {}
    with_clips: set[str] = set()
    for index_path in committed_shards(root):
        index = pq.read_table(index_path, columns=["video_id", "duration"])
        with_clips.update(index.column("video_id").unique().to_pylist())
        durations = np.clip(index.column("duration").to_numpy(), 0.0, DURATION_EDGES[-1] - 1e-9)
        s["duration_counts"] += np.histogram(durations, bins=DURATION_EDGES)[0]
        stats_path = index_path.with_name(index_path.name.replace(INDEX_SUFFIX, STATS_SUFFIX))
        st = json.loads(stats_path.read_text(encoding="utf-8"))
        s["shards"] += 1
        s["retries"].update(st.get("retries", {}))
        s["clips"] += st["clips"]
        s["clip_seconds"] += st["clip_seconds"]
        s["clips_per_lang"].update(st["clips_per_lang"])
        for lang, reasons in st["lid"]["rejected"].items():
            s["lid_rejected"][lang].update(reasons)
        s["lid_uncertain"].update(st["lid"]["uncertain"])
        for lang, reasons in st["missing_langs"].items():
            s["missing_langs"][lang].update(reasons)
        for lang, reasons in st["track_errors"].items():
            s["track_errors"][lang].update(reasons)
        s["timings_s"].update(st["timings_s"])
        for v in st["per_video"]:
            # shards in unit order: a retry unit comes later. Only what the counts need.
            latest[v["video_id"]] = {k: v.get(k) for k in ("video_id", "status", "reason", "detail", "failed_at")}
            latest[v["video_id"]]["error"] = f"{v['reason']}: {v['detail']}" if v.get("detail") else v.get("reason", "")
            for lang, score in v.get("lid_scores", {}).items():
                if v["lid"].get(lang) != "reject":
                    s["lid_scores"][lang].append(score)
    # Counts by video use each video's latest status (a failed video may succeed in a
    # retry unit); the per-shard counters above are summed as they are.
    s["videos"] = Counter(total=len(latest), ok=sum(v["status"] == "ok" for v in latest.values()))
    s["videos"]["failed"] = s["videos"]["total"] - s["videos"]["ok"]
    s["videos_with_clips"] = len(with_clips)
    s["failed_videos"] = [v for v in latest.values() if v["status"] != "ok"]
    s["failures"] = Counter(v["reason"] or "unknown" for v in s["failed_videos"])
    from multihowto.pipeline.plan import read_rejected
    from multihowto.pipeline.storage import LocalStorage

    s["rejected_rows"] = read_rejected(LocalStorage(root))
    return s


def export_how2(root: Path) -> list[Path]:
    """``how2_{lang}.json``: ``{video_id: {"text": [...], "start": [...], "end": [...]}}``,
    written shard by shard (a video's clips all lie in one shard: units hold whole
    videos, and a retry unit only takes videos that gave no clips)."""
    root = Path(root)
    columns = ["video_id", "clip_index", "start", "end", *(f"text_{lang}" for lang in LANGS)]
    tmp = {lang: root / (how2_file(lang) + ".tmp") for lang in LANGS}
    files = {lang: open(path, "w", encoding="utf-8") for lang, path in tmp.items()}
    first = dict.fromkeys(LANGS, True)
    seen: set[str] = set()
    try:
        for f in files.values():
            f.write("{")
        for index_path in committed_shards(root):
            rows = pq.read_table(index_path, columns=columns).to_pylist()
            rows.sort(key=lambda r: (r["video_id"], r["clip_index"]))
            by_video: dict[str, list[dict]] = defaultdict(list)
            for r in rows:
                by_video[r["video_id"]].append(r)
            if seen & by_video.keys():
                raise ValueError(f"{index_path.name}: videos already in an earlier shard: {sorted(seen & by_video.keys())[:5]}")
            seen.update(by_video)
            for vid, clips in by_video.items():
                for lang in LANGS:
                    kept = [r for r in clips if r[f"text_{lang}"]]
                    if not kept:
                        continue
                    entry = {"text": [r[f"text_{lang}"] for r in kept], "start": [r["start"] for r in kept], "end": [r["end"] for r in kept]}
                    files[lang].write(("" if first[lang] else ", ") + json.dumps(vid) + ": " + json.dumps(entry, ensure_ascii=False))
                    first[lang] = False
        for f in files.values():
            f.write("}")
    except BaseException:
        for lang, f in files.items():
            f.close()
            tmp[lang].unlink(missing_ok=True)
        raise
    for f in files.values():
        f.close()
    paths = []
    for lang, path in tmp.items():
        paths.append(path.replace(root / how2_file(lang)))
    return paths


def _plots(root: Path, s: dict) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = root / REPORT_DIR
    out.mkdir(exist_ok=True)
    files = {}

    def save(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        files[name] = f"{REPORT_DIR}/{name}"

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(list(LANGS), [s["clips_per_lang"][lang] for lang in LANGS], color="#4477aa")
    ax.axhline(s["clips"], color="grey", linestyle="--", label="all clips")
    ax.set_ylabel("clips")
    ax.set_title("Clips per language")
    ax.legend()
    save(fig, "clips_per_lang.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.stairs(s["duration_counts"], DURATION_EDGES, fill=True, color="#228833")
    used = np.nonzero(s["duration_counts"])[0]
    ax.set_xlim(0, DURATION_EDGES[used[-1] + 1] + 0.5 if len(used) else DURATION_EDGES[-1])
    ax.set_xlabel("clip length (s)")
    ax.set_ylabel("clips")
    ax.set_title("Clip lengths")
    save(fig, "clip_lengths.png")

    scores = s["lid_scores"]
    fig, ax = plt.subplots(figsize=(6, 3))
    data = [scores.get(lang, []) or [0.0] for lang in LANGS]
    ax.boxplot(data, tick_labels=list(LANGS))
    ax.set_ylabel("fastText score of the track")
    ax.set_title("Language ID score per language (accepted tracks)")
    save(fig, "lid_scores.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    reasons = s["failures"] + Counter({f"lid {lang}: {r}": n for lang, c in s["lid_rejected"].items() for r, n in c.items()})
    names = list(reasons) or ["none"]
    ax.barh(names, [reasons[n] for n in names] if reasons else [0], color="#cc6677")
    ax.set_xlabel("count")
    ax.set_title("Failures and rejected tracks by reason")
    save(fig, "failures.png")
    return files


def write_report(root: Path) -> str:
    """Write the card, plots and how2 exports; returns the card's markdown."""
    root = Path(root)
    s = summarise(root)
    export_how2(root)
    plots = _plots(root, s)
    videos_with_clips = s["videos_with_clips"]
    lines = [
        "# multihowto dataset card",
        "",
        f"- shards: {s['shards']}  (WebDataset tar + parquet index + stats json each)",
        f"- videos: {s['videos']['total']} planned, {s['videos']['ok']} ok, {s['videos']['failed']} failed; {videos_with_clips} with clips",
        f"- clips: {s['clips']}  ({s['clip_seconds'] / 60:.1f} minutes)",
        f"- manifest rows rejected: {len(s['rejected_rows'])}",
        "",
        "## Clips per language",
        "",
        "| lang | clips | coverage |",
        "|---|---|---|",
    ]
    for lang in LANGS:
        n = s["clips_per_lang"][lang]
        lines.append(f"| {lang} | {n} | {100 * n / max(1, s['clips']):.1f}% |")
    lines += ["", f"![clips per language]({plots['clips_per_lang.png']})", ""]
    lines += ["## Language ID", "", "| lang | rejected tracks | uncertain tracks (kept, flagged) |", "|---|---|---|"]
    for lang in LANGS:
        rej = ", ".join(f"{r}: {n}" for r, n in sorted(s["lid_rejected"].get(lang, {}).items())) or "0"
        lines.append(f"| {lang} | {rej} | {s['lid_uncertain'].get(lang, 0)} |")
    lines += ["", f"![LID scores]({plots['lid_scores.png']})", ""]
    lines += ["## Missing languages (videos without a usable track)", ""]
    for lang in LANGS:
        miss = s["missing_langs"].get(lang)
        if miss:
            lines.append(f"- {lang}: " + ", ".join(f"{r}: {n}" for r, n in sorted(miss.items())))
    if not s["missing_langs"]:
        lines.append("- none")
    lines += ["", "## Failures by reason", ""]
    for reason, n in s["failures"].most_common():
        lines.append(f"- {reason}: {n}")
    for v in s["failed_videos"]:
        lines.append(f"  - {v['video_id']} at {v['failed_at']}: {v['error']}")
    for row in s["rejected_rows"]:
        lines.append(f"- manifest line {row['line']}: {row['reason']} ({row['value']})")
    if not s["failures"] and not s["rejected_rows"]:
        lines.append("- none")
    lines += ["", f"![failures]({plots['failures.png']})", "", "## Clip lengths", "", f"![clip lengths]({plots['clip_lengths.png']})", ""]
    lines += ["## Stage time (summed over videos, seconds)", ""]
    for stage, secs in s["timings_s"].items():
        lines.append(f"- {stage}: {secs:.2f}")
    card = "\n".join(lines) + "\n"
    (root / CARD_FILE).write_text(card, encoding="utf-8")
    return card


def publish_report(storage, cfg_name: str) -> str:
    """Write the card for a dataset in any storage: remote ones are mirrored (stats,
    indexes, plan) to build/report/{region}, and the card, plots and how2 exports are
    uploaded next to the shards."""
    from multihowto.pipeline.storage import LocalStorage, mirror

    if isinstance(storage, LocalStorage):
        return write_report(storage.root)
    local = mirror(storage, Path("build") / "report" / cfg_name, (INDEX_SUFFIX, STATS_SUFFIX, PLAN_FILE))
    card = write_report(local)
    for path in [local / CARD_FILE, *sorted((local / REPORT_DIR).glob("*.png")), *sorted(local.glob("how2_*.json"))]:
        storage.put_bytes(path.read_bytes(), str(path.relative_to(local)))
    return card
