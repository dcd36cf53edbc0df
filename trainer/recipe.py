"""The recipe on our own data: does multilingual pre-training help non-English search?

The paper's protocol, at laptop scale. A recipe site (100 videos, about a thousand
clips; each clip shows one emoji and its subtitle, in all nine languages, is that
emoji's CLDR name) goes through the pipeline. The clips draw on 200 emoji, so each emoji
recurs in about five videos, over other footage, as HowTo100M's topics recur across
videos and reappear in MSR-VTT. The videos are split by id hash into pretrain (60%),
fine-tune (20%) and test (20%): no test video is seen in training. For each seed:

1. pre-train twice on the pretrain split: with English subtitles only, and with all nine
   languages (plus the cross-lingual text-text term);
2. fine-tune both on the fine-tune split with English captions only (zero-shot
   cross-lingual protocol);
3. query the test split in all nine languages (text->video and video->text), one clip
   per emoji so that every query has exactly one right answer.

Beside the zero-shot protocol, each pre-training is also fine-tuned translate-train: on
the fine-tune split's captions in all nine languages (the paper machine-translates the
English training captions; here the translations are the site's own human ones).

Both use the same multilingual sentencepiece vocabulary, trained on the pretrain split.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
import time
from pathlib import Path

from multihowto.pipeline.plan import stable_hash
from multihowto.sample_site.spec import SiteSpec
from multihowto.schemas.sample import LANGS

SITE = SiteSpec(
    n_videos=100, cues_per_video=(8, 12), cue_seconds=(2.0, 3.0), fps=5, seed=1,
    rolling_en=(), wrong_language=(-1, "de", "fr"), missing_langs=(-1, ()), corrupt_video=-1,
    emoji_pool=200,
)
SPLITS = ("pretrain", "finetune", "test")
VARIANTS = {"english-only": ("en",), "multilingual": LANGS}
# fine-tuning protocols: the languages of the fine-tune split's captions each one uses
PROTOCOLS = {"zero-shot": ("en",), "translate-train": LANGS}
FINETUNE_DIR = {"zero-shot": "finetune", "translate-train": "translate-train"}
BUILT_FROM = "_built_from"  # in the dataset, tokenizer and runs folders: the inputs they were made from


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    root: str = "."
    region: str = "recipe"
    seeds: tuple[int, ...] = (0, 1, 2)
    pretrain_steps: int = 500
    finetune_steps: int = 100
    batch_size: int = 64
    vocab_size: int = 3000
    runs: str = "runs/recipe"
    site: SiteSpec = SITE
    # True: train on the dataset, splits and tokenizer an earlier ``prepare`` left in place
    # (on a machine that cannot build them, such as a GPU box with no Ray or ffmpeg)
    prepared: bool = False


class RecipeNotTrained(RuntimeError):
    """``evaluate`` before ``pretrain`` has produced every checkpoint it needs."""


class RecipeNotPrepared(RuntimeError):
    """``pretrain`` with ``prepared`` set, but ``prepare`` has not left all it needs."""


def split_of(video_id: str) -> str:
    h = stable_hash(video_id, "recipe-split") % 10
    return "pretrain" if h < 6 else "finetune" if h < 8 else "test"


def region(rc: RecipeConfig):
    """The recipe's region profile (deploy/regions/{rc.region}.yaml under ``rc.root``):
    where its site is built and its dataset written."""
    from multihowto.schemas.config import load_region, region_path

    return load_region(region_path(rc.region, Path(rc.root)))


def prepare(rc: RecipeConfig, log=print) -> Path:
    """Build the recipe site and dataset, the split files and the tokenizer."""
    from multihowto.pipeline.plan import planned_ids
    from multihowto.pipeline.run import run_dataset
    from multihowto.pipeline.storage import LocalStorage
    from multihowto.sample_site.build import build_site
    from multihowto.trainer.tokenizer import corpus_texts, train_tokenizer

    cfg = region(rc)
    t = time.perf_counter()
    site = build_site(Path(cfg.source.site_dir), rc.site)
    log(f"[recipe] site {cfg.source.site_dir} ready ({time.perf_counter() - t:.0f}s)")
    data = Path(cfg.output)
    claim_folder(data, (site / ".built").read_text(), "was built from another recipe site: rebuilding it", log)
    t = time.perf_counter()
    summary = run_dataset(cfg, log=log, ours=(BUILT_FROM,))
    log(f"[recipe] dataset {cfg.output}: {summary.clips} new clips ({time.perf_counter() - t:.0f}s)")
    all_ids = sorted(planned_ids(LocalStorage(data)))
    (data / "splits").mkdir(exist_ok=True)
    for split in SPLITS:
        (data / "splits" / f"{split}.txt").write_text("\n".join(v for v in all_ids if split_of(v) == split) + "\n")
    tok = data / "tokenizer" / "spm.model"
    claim_folder(tok.parent, tokenizer_stamp(rc), "was trained for another vocab size: retraining it", log)
    if not tok.exists():
        pretrain_ids = {v for v in all_ids if split_of(v) == "pretrain"}
        train_tokenizer(corpus_texts(data, LANGS, pretrain_ids), tok, rc.vocab_size)
        log(f"[recipe] tokenizer {tok}")
    return data


def tokenizer_stamp(rc: RecipeConfig) -> str:
    """What the tokenizer folder is stamped with: the vocab size asked for (sentencepiece
    may give fewer pieces)."""
    return json.dumps({"vocab_size": rc.vocab_size})


def use_prepared(rc: RecipeConfig) -> Path:
    """The dataset folder an earlier ``prepare`` completed, checked but not rebuilt: its
    stamp, split files and a tokenizer of the configured vocabulary size must be there."""
    data = Path(region(rc).output)
    tok_stamp = data / "tokenizer" / BUILT_FROM
    need = [data / BUILT_FROM, *(data / "splits" / f"{s}.txt" for s in SPLITS), data / "tokenizer" / "spm.model", tok_stamp]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        raise RecipeNotPrepared(f"{missing[0]} is missing: run `mhowto recipe prepare` (on a machine with the pipeline) first")
    if tok_stamp.read_text() != tokenizer_stamp(rc):
        raise RecipeNotPrepared(f"{data / 'tokenizer'} was trained for {tok_stamp.read_text()}, not vocab_size {rc.vocab_size}")
    return data


def run_key(variant: str, seed: int, protocol: str = "zero-shot") -> str:
    """The key of one evaluated model in results.json's ``runs``."""
    return f"{variant}-s{seed}" + ("" if protocol == "zero-shot" else f"-{protocol}")


def run_dir(rc: RecipeConfig, variant: str, seed: int) -> Path:
    return Path(rc.runs) / f"{variant}-s{seed}"


def claim_folder(folder: Path, built_from: str, note: str, log=print) -> None:
    """Keep ``folder`` (what a killed recipe left there resumes) only when it was built
    from the same inputs (``built_from`` says which, stamped before any work); otherwise
    empty it, saying so with ``note``."""
    stamp = folder / BUILT_FROM
    if folder.exists() and (not stamp.exists() or stamp.read_text() != built_from):
        log(f"[recipe] {folder} {note}")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(built_from)


def speed(summary: dict) -> str:
    """A training session's speed for the log: samples/s and model TFLOP/s, with the
    fraction of the GPU's bf16 peak where known; a session that ran no step says so."""
    if summary["samples_per_s"] is None:
        return "already trained"
    out = f"{summary['samples_per_s']:.0f} samples/s, {summary['tflops']:.3f} TFLOP/s on {summary['device']}"
    return out + (f" ({100 * summary['mfu']:.2f}% of bf16 peak)" if "mfu" in summary else "")


def pretrain(rc: RecipeConfig, log=print) -> None:
    from multihowto.trainer.train import TrainConfig, read_history, train

    data = use_prepared(rc) if rc.prepared else prepare(rc, log)
    splits = data / "splits"
    settings = {k: getattr(rc, k) for k in ("pretrain_steps", "finetune_steps", "batch_size", "vocab_size")}
    claim_folder(Path(rc.runs), (data / BUILT_FROM).read_text() + json.dumps(settings, sort_keys=True),
                 "holds runs on another recipe dataset or settings: starting afresh", log)
    for seed in rc.seeds:
        for variant, langs in VARIANTS.items():
            out = run_dir(rc, variant, seed)
            t = time.perf_counter()
            pre = train(TrainConfig(data=str(data), out_dir=str(out / "pretrain"), langs=langs, videos=str(splits / "pretrain.txt"),
                                    steps=rc.pretrain_steps, batch_size=rc.batch_size, seed=seed), log=log)
            for protocol, ft_langs in PROTOCOLS.items():
                train(TrainConfig(
                    data=str(data), out_dir=str(out / FINETUNE_DIR[protocol]), langs=ft_langs, videos=str(splits / "finetune.txt"),
                    steps=rc.finetune_steps, batch_size=rc.batch_size, seed=seed, lr=5e-4, warmup=10, xling_weight=0.0,
                    init_from=str(out / "pretrain" / "ckpt.pt")), log=log)
            # losses from the runs' logs: a resumed run's own history may be empty
            pre_loss = [h["loss"] for h in read_history(out / "pretrain")]
            ft_loss = {protocol: read_history(out / FINETUNE_DIR[protocol])[-1]["loss"] for protocol in PROTOCOLS}
            log(f"[recipe] {variant} seed {seed}: pretrain loss {pre_loss[0]:.2f} -> {pre_loss[-1]:.2f}, "
                f"fine-tune loss {ft_loss['zero-shot']:.2f} (English), {ft_loss['translate-train']:.2f} (translate-train); "
                f"{speed(pre)} ({time.perf_counter() - t:.0f}s)")


def evaluate(rc: RecipeConfig, log=print) -> dict:
    from multihowto.trainer.data import clip_stream
    from multihowto.trainer.evaluate import evaluate_clips, mean_over
    from multihowto.trainer.tokenizer import Tokenizer
    from multihowto.trainer.train import load_checkpoint, model_data_config, read_ids

    data = Path(region(rc).output)
    missing = [str(p) for p in [data / "tokenizer" / "spm.model",
                                *(run_dir(rc, v, seed) / d / "ckpt.pt" for seed in rc.seeds for v in VARIANTS for d in FINETUNE_DIR.values())]
               if not p.exists()]
    if missing:
        raise RecipeNotTrained(f"nothing to evaluate: {len(missing)} file(s) missing, first {missing[0]}; "
                               f"run `make pretrain` (or `mhowto recipe pretrain --seeds {' '.join(map(str, rc.seeds))}`) first")
    tok = Tokenizer(data / "tokenizer" / "spm.model")
    test_ids = read_ids(str(data / "splits" / "test.txt"))
    results: dict = {"protocol": "pretrain (en-only vs 9 languages) -> fine-tune on English (zero-shot) or on all 9 languages (translate-train) -> query the test split in 9 languages",
                     "runs": {}}
    clips = None
    for seed in rc.seeds:
        for variant in VARIANTS:
            for protocol, sub in FINETUNE_DIR.items():
                model, _ = load_checkpoint(run_dir(rc, variant, seed) / sub / "ckpt.pt")
                if clips is None:
                    clips = one_per_caption(clip_stream(model_data_config(model.cfg, str(data), shuffle=0, videos=test_ids)))
                res = evaluate_clips(model, tok, clips, LANGS)
                results["runs"][run_key(variant, seed, protocol)] = res
                log(f"[eval] {variant} seed {seed} {protocol}: en R@1 {res['en']['t2v']['R@1']:.1f}, "
                    f"mean non-English R@1 {mean_over(res, LANGS[1:]):.1f}")
    results["test_clips"] = len(clips)
    results["summary"] = summarise(results, rc.seeds)
    out = Path(rc.runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    md = results_markdown(results, rc.seeds)
    (out / "results.md").write_text(md)
    plot(results, rc.seeds, out / "results.png")
    log(md)
    return results


def one_per_caption(clips) -> list[dict]:
    """The first clip (by key) of each English caption: a test split where two clips show
    the same emoji would give a query two right answers, and R@1 would count one as a miss."""
    kept: dict[str, dict] = {}
    for clip in sorted(clips, key=lambda c: c["key"]):
        kept.setdefault(clip["texts"].get("en") or json.dumps(clip["texts"], sort_keys=True), clip)
    return list(kept.values())


def _variant_summary(results: dict, variant: str, seeds, protocol: str) -> dict:
    from multihowto.trainer.evaluate import mean_over

    runs = [results["runs"][run_key(variant, seed, protocol)] for seed in seeds]
    non_en = [mean_over(r, LANGS[1:]) for r in runs]
    return {
        "per_lang_t2v_R@1": {lang: statistics.mean(r[lang]["t2v"]["R@1"] for r in runs) for lang in LANGS},
        "mean_non_english_R@1_per_seed": non_en,
        "mean_non_english_R@1": statistics.mean(non_en),
        "spread_non_english_R@1": max(non_en) - min(non_en),
    }


def summarise(results: dict, seeds) -> dict:
    """The zero-shot comparison at the top level (the recipe's question), and the same
    figures after translate-train under ``translate-train``."""
    s = {variant: _variant_summary(results, variant, seeds, "zero-shot") for variant in VARIANTS}
    gap = s["multilingual"]["mean_non_english_R@1"] - s["english-only"]["mean_non_english_R@1"]
    spread = max(s[v]["spread_non_english_R@1"] for v in VARIANTS)
    s["gap_non_english_R@1"] = gap
    s["max_seed_spread"] = spread
    # one seed has no spread: the comparison needs at least two
    s["multilingual_wins_beyond_spread"] = gap > spread if len(seeds) > 1 else None
    s["translate-train"] = {variant: _variant_summary(results, variant, seeds, "translate-train") for variant in VARIANTS}
    return s


def results_markdown(results: dict, seeds) -> str:
    lines = [f"# Recipe results ({results['test_clips']} test clips, seeds {', '.join(map(str, seeds))})", "",
             results["protocol"], ""]
    header = ["| pre-training | " + " | ".join(LANGS) + " | mean non-en |", "|---" * (len(LANGS) + 2) + "|"]

    def row(label: str, runs: list[dict], direction: str, metric: str) -> str:
        vals = [statistics.mean(r[lang][direction][metric] for r in runs) for lang in LANGS]
        return f"| {label} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {statistics.mean(vals[1:]):.1f} |"

    for direction in ("t2v", "v2t"):
        lines += [f"## Zero-shot, {'text->video' if direction == 't2v' else 'video->text'} (mean over seeds)", "", *header]
        for metric in ("R@1", "R@5", "R@10", "MedR"):
            for variant in VARIANTS:
                lines.append(row(f"{variant} {metric}", [results["runs"][run_key(variant, seed)] for seed in seeds], direction, metric))
        lines.append("")
    s = results["summary"]
    lines += ["## Zero-shot, every seed: mean non-English text->video R@1", ""]
    for variant in VARIANTS:
        per = ", ".join(f"{v:.1f}" for v in s[variant]["mean_non_english_R@1_per_seed"])
        lines.append(f"- {variant}: {per} (mean {s[variant]['mean_non_english_R@1']:.1f}, spread {s[variant]['spread_non_english_R@1']:.1f})")
    verdict = {True: "beyond the spread", False: "NOT beyond the spread",
               None: "one seed, no spread to judge it by (run --seeds 0 1 2)"}[s["multilingual_wins_beyond_spread"]]
    lines += ["", f"Multilingual minus English-only: {s['gap_non_english_R@1']:+.1f} R@1; largest seed spread {s['max_seed_spread']:.1f}; "
              f"{verdict}.", ""]
    lines += ["## Translate-train (fine-tuned on all nine languages), text->video (mean over seeds)", "", *header]
    for metric in ("R@1", "R@10"):
        for variant in VARIANTS:
            lines.append(row(f"{variant} {metric}", [results["runs"][run_key(variant, seed, "translate-train")] for seed in seeds], "t2v", metric))
    lines += ["", "Every seed, mean non-English R@1: " + "; ".join(
        f"{variant} " + ", ".join(f"{v:.1f}" for v in s["translate-train"][variant]["mean_non_english_R@1_per_seed"]) for variant in VARIANTS), ""]
    return "\n".join(lines)


def plot(results: dict, seeds, path: Path) -> None:
    """Text->video R@1 per language, English-only vs multilingual pre-training, after
    each fine-tuning protocol."""
    from multihowto.trainer.evaluate import bar_chart

    summaries = {"zero-shot (English fine-tuning)": results["summary"], "translate-train": results["summary"]["translate-train"]}
    panels = {title: {variant: summary[variant]["per_lang_t2v_R@1"] for variant in VARIANTS} for title, summary in summaries.items()}
    bar_chart(panels, path, "text->video R@1")
