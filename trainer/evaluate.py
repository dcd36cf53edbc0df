"""Retrieval metrics in the paper's conventions, and evaluation on a split of clips.

R@K = 100 x the share of queries whose true item ranks in the top K; MedR = the median
rank (1-based). Text->video uses the similarity matrix (queries x gallery), video->text
its transpose. A rank counts the items scored strictly higher than the true one, so ties
do not help. The multilingual figure is the mean of the per-language figures.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch

from multihowto.schemas.sample import LANGS


def ranks(sim: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each row's target column in ``sim`` (Q, G)."""
    true = sim.gather(1, targets.view(-1, 1))
    return (sim > true).sum(dim=1) + 1


def retrieval_metrics(r: torch.Tensor) -> dict[str, float]:
    r = r.float()
    return {
        "R@1": 100 * (r <= 1).float().mean().item(),
        "R@5": 100 * (r <= 5).float().mean().item(),
        "R@10": 100 * (r <= 10).float().mean().item(),
        "MedR": float(r.median().item()) if len(r) % 2 else float(statistics.median(r.tolist())),
        "n": len(r),
    }


@torch.no_grad()
def embed_clips(model, tokenizer, clips: list[dict], langs: tuple[str, ...], device: str, batch: int = 64):
    """Video embeddings (N, D) and, per language, (clip indices, text embeddings)."""
    model.eval()
    videos = []
    for i in range(0, len(clips), batch):
        v = torch.stack([c["video"] for c in clips[i : i + batch]]).to(device)
        videos.append(model.video(v).float().cpu())
    texts = {}
    for lang in langs:
        idx = [i for i, c in enumerate(clips) if lang in c["texts"]]
        if not idx:
            continue
        embs = []
        for j in range(0, len(idx), batch):
            ids, mask = tokenizer.encode([clips[i]["texts"][lang] for i in idx[j : j + batch]], model.cfg.max_len)
            embs.append(model.text(ids.to(device), mask.to(device)).float().cpu())
        texts[lang] = (torch.tensor(idx), torch.cat(embs))
    return torch.cat(videos), texts


def evaluate_clips(model, tokenizer, clips: list[dict], langs: tuple[str, ...] = LANGS, device: str = "cpu") -> dict:
    """t2v and v2t metrics per language over ``clips`` (each its own gallery item)."""
    video, texts = embed_clips(model, tokenizer, clips, langs, device)
    out = {}
    for lang, (idx, text) in texts.items():
        sim = text @ video.t()  # (queries, all clips)
        t2v = retrieval_metrics(ranks(sim, idx))
        # video->text: each clip that has a caption in this language against those captions
        v2t = retrieval_metrics(ranks(sim[:, idx].t(), torch.arange(len(idx))))
        out[lang] = {"t2v": t2v, "v2t": v2t}
    return out


def mean_over(results: dict, langs, direction: str = "t2v", metric: str = "R@1") -> float:
    vals = [results[lang][direction][metric] for lang in langs if lang in results]
    return sum(vals) / len(vals) if vals else float("nan")


def results_table(results: dict) -> str:
    """The per-language markdown table: text->video and video->text R@1/5/10 and MedR."""
    rows = ["| lang | t2v R@1 | R@5 | R@10 | MedR | v2t R@1 | R@5 | R@10 | MedR |", "|---|---|---|---|---|---|---|---|---|"]
    for lang, r in results.items():
        t, v = r["t2v"], r["v2t"]
        rows.append(f"| {lang} | {t['R@1']:.1f} | {t['R@5']:.1f} | {t['R@10']:.1f} | {t['MedR']:.0f} "
                    f"| {v['R@1']:.1f} | {v['R@5']:.1f} | {v['R@10']:.1f} | {v['MedR']:.0f} |")
    return "\n".join(rows)


def bar_chart(panels: dict[str, dict[str, dict[str, float]]], path: Path, ylabel: str) -> None:
    """A PNG with one panel per title; in each, one bar series per name, over the
    languages of the first series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.5), sharey=True, squeeze=False)
    for ax, (title, series) in zip(axes[0], panels.items(), strict=True):
        langs = list(next(iter(series.values())))
        width = 0.8 / len(series)
        for i, (name, vals) in enumerate(series.items()):
            offset = (i - (len(series) - 1) / 2) * width
            ax.bar([x + offset for x in range(len(langs))], [vals.get(lang, 0.0) for lang in langs], width, label=name)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_title(title)
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_results(results: dict, out_dir: Path, about: dict) -> list[Path]:
    """``results.json`` (the raw figures and ``about``: checkpoint, data, clips),
    ``results.md`` (the table) and ``results.png`` (R@1/5/10 per language, both
    directions) in ``out_dir``. Returns the three paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    non_en = [lang for lang in results if lang != "en"]
    summary = {f"mean_non_english_{d}_R@1": mean_over(results, non_en, d) for d in ("t2v", "v2t")}
    paths = [out_dir / f"results.{ext}" for ext in ("json", "md", "png")]
    paths[0].write_text(json.dumps({**about, **summary, "per_language": results}, indent=1))
    lines = [f"# Retrieval results: {about.get('checkpoint', '')}", "",
             ", ".join(f"{k} {v}" for k, v in about.items() if k != "checkpoint"), "", results_table(results), "",
             f"Mean over non-English languages, R@1: text->video {summary['mean_non_english_t2v_R@1']:.1f}, "
             f"video->text {summary['mean_non_english_v2t_R@1']:.1f}", ""]
    paths[1].write_text("\n".join(lines))
    panels = {title: {k: {lang: r[d][k] for lang, r in results.items()} for k in ("R@1", "R@5", "R@10")}
              for title, d in (("text->video", "t2v"), ("video->text", "v2t"))}
    bar_chart(panels, paths[2], "recall (%)")
    return paths
