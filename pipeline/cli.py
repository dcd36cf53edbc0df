"""``mhowto``: the command line.

    mhowto dataset --region local        build the dataset of a region profile
    mhowto doctor --region aws-us        what yt-dlp finds on this node; refuse what cannot run
    mhowto inspect data/local            what a built dataset holds
    mhowto browse data/local             look at it in a browser (read-only, 127.0.0.1)
    mhowto build-sample                  build the sample video site
    mhowto serve-sample                  serve it on 127.0.0.1 until interrupted
    mhowto lid-table                     language ID accuracy per language, thresholds
    mhowto tokenizer | train | eval      the bundled trainer
    mhowto recipe prepare|pretrain|eval  the recipe: en-only vs multilingual pre-training
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from multihowto.schemas.config import ConfigError, load_region, region_path
from multihowto.schemas.manifest import ManifestError


def cmd_dataset(args: argparse.Namespace) -> int:
    from multihowto.pipeline.lease import OutputBusy
    from multihowto.pipeline.manifest import check_manifest
    from multihowto.pipeline.plan import PlanMismatch
    from multihowto.pipeline.ray_runner import RayStartFailed, RayUnavailable
    from multihowto.pipeline.reaper import RERUN
    from multihowto.pipeline.report import publish_report
    from multihowto.pipeline.run import OutputNotOurs, run_dataset
    from multihowto.pipeline.storage import open_storage

    path = Path(args.profile) if args.profile else region_path(args.region)
    try:
        cfg = load_region(path)
        if cfg.source.kind == "manifest" and not cfg.source.manifest.startswith("s3://"):
            check_manifest(cfg.source.manifest)  # before anything is created
    except (ConfigError, ManifestError) as e:
        return _error(e)
    from multihowto.pipeline.doctor import preflight

    problems = preflight(cfg)  # a node that cannot run the region says so before any video fails
    for problem in problems:
        print(f"error: region {cfg.name} cannot run on this node: {problem} (see `mhowto doctor`)", file=sys.stderr)
    if problems:
        return 2
    print(f"[region] {cfg.name}: output {cfg.output}, ray {cfg.ray_address}, partition {cfg.partition}")
    try:
        summary = run_dataset(cfg, retry_failed=args.retry_failed)
    except (PlanMismatch, ManifestError, OutputBusy, OutputNotOurs, RayUnavailable) as e:
        return _error(e)
    except RayStartFailed as e:  # not the input's fault: exit 1, as for units left to do
        print(f"error: {e}", file=sys.stderr)
        return 1
    publish_report(open_storage(cfg.output, cfg.s3_endpoint, cfg.s3_region), cfg.name)
    print(
        f"[done] {summary.units_committed} shards committed now, {summary.units_done_before} already done "
        f"({summary.units_total} in all); {summary.clips} new clips from {summary.videos} videos "
        f"in {summary.seconds:.1f}s"
    )
    print(f"[card] {cfg.output.rstrip('/')}/README.md")
    print()
    from multihowto.pipeline.inspect_dataset import inspect_dataset

    print(inspect_dataset(cfg.output, cfg.s3_endpoint, cfg.s3_region))
    if summary.units_failed:
        for unit, error in sorted(summary.units_failed.items()):
            print(f"error: unit {unit} was not committed: {error}", file=sys.stderr)
        print(f"error: {RERUN}", file=sys.stderr)
        return 1
    return 0


def _error(e: Exception) -> int:
    """A refused input: one ``error:`` line on stderr (no traceback), exit status 2."""
    print("error: " + " ".join(str(e).split()), file=sys.stderr)
    return 2


def cmd_doctor(args: argparse.Namespace) -> int:
    from multihowto.pipeline.doctor import inspect_node, render

    path = Path(args.profile) if args.profile else region_path(args.region)
    try:
        cfg = load_region(path)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    findings = inspect_node(cfg)
    print(render(cfg, findings))
    problems = [f"{f.name}: {f.detail}" for f in findings if f.required and not f.ok]
    for problem in problems:
        print(f"error: region {cfg.name} cannot run here: {problem}", file=sys.stderr)
    return 2 if problems else 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from multihowto.pipeline.inspect_dataset import inspect_dataset

    try:
        print(inspect_dataset(args.path))
    except ValueError as e:  # a URI the storage layer does not read
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_browse(args: argparse.Namespace) -> int:
    from multihowto.pipeline.browse import serve

    try:
        serve(args.path, host=args.host, port=args.port, endpoint=args.s3_endpoint)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_build_sample(args: argparse.Namespace) -> int:
    from multihowto.sample_site.build import build_site

    started = time.perf_counter()
    site = build_site(Path(args.site_dir))
    print(f"[site] {site} ready ({time.perf_counter() - started:.1f}s)")
    return 0


def cmd_serve_sample(args: argparse.Namespace) -> int:
    from multihowto.sample_site.build import build_site
    from multihowto.sample_site.server import serve

    site = build_site(Path(args.site_dir))
    with serve(site, port=args.port) as base:
        print(f"[site] serving {site} at {base}  (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_lid_table(args: argparse.Namespace) -> int:
    from multihowto.pipeline.lid_table import measure, render
    from multihowto.sample_site.material import load_emoji

    reject_score, rows = measure(tracks_per_lang=args.tracks, track_cues=args.cues, seed=args.seed)
    print(render(reject_score, rows, len(load_emoji()), args.tracks, args.cues))
    return 0


def cmd_tokenizer(args: argparse.Namespace) -> int:
    from multihowto.trainer.tokenizer import corpus_texts, train_tokenizer

    texts = corpus_texts(args.dataset)
    out = Path(args.out) if args.out else Path(args.dataset) / "tokenizer" / "spm.model"
    path = train_tokenizer(texts, out, args.vocab_size)
    counts = ", ".join(f"{lang}={len(t)}" for lang, t in texts.items())
    print(f"[tokenizer] {path} (vocab {args.vocab_size}; sentences {counts}; balanced per language)")
    return 0


def cmd_train(args: argparse.Namespace, rest: list[str]) -> int:
    from multihowto.trainer.train import main as train_main

    return train_main(rest)


def cmd_eval(args: argparse.Namespace) -> int:
    from multihowto.schemas.sample import LANGS
    from multihowto.trainer.data import clip_stream
    from multihowto.trainer.evaluate import evaluate_clips, results_table, write_results
    from multihowto.trainer.tokenizer import Tokenizer
    from multihowto.trainer.train import load_checkpoint, model_data_config, read_ids

    model, ckpt = load_checkpoint(args.ckpt)
    tok = Tokenizer(args.tokenizer or Path(args.data) / "tokenizer" / "spm.model")
    ids = read_ids(args.videos)
    clips = list(clip_stream(model_data_config(model.cfg, args.data, shuffle=0, videos=ids)))
    res = evaluate_clips(model, tok, clips, LANGS)
    print(f"{len(clips)} clips; checkpoint step {ckpt['step']}")
    print(results_table(res))
    about = {"checkpoint": str(args.ckpt), "step": ckpt["step"], "data": args.data, "videos": args.videos or "all", "clips": len(clips)}
    paths = write_results(res, Path(args.out_dir) if args.out_dir else Path(args.ckpt).parent, about)
    print("[eval] wrote " + ", ".join(map(str, paths)))
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from multihowto.trainer.recipe import (
        RecipeConfig,
        RecipeNotPrepared,
        RecipeNotTrained,
        evaluate,
        prepare,
        pretrain,
    )

    rc = RecipeConfig(seeds=tuple(args.seeds), prepared=args.prepared)
    try:
        if args.stage == "prepare":
            prepare(rc)
        elif args.stage == "pretrain":
            pretrain(rc)
        else:
            evaluate(rc)
    except (RecipeNotTrained, RecipeNotPrepared) as e:
        print(f"mhowto recipe {args.stage}: {e}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mhowto", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dataset", help="build the dataset of a region profile")
    d.add_argument("--region", default="local", help="deploy/regions/{REGION}.yaml (default: local)")
    d.add_argument("--profile", help="path to a region profile (overrides --region)")
    d.add_argument("--retry-failed", action="store_true", help="re-try the videos that failed in earlier runs, in new units")
    d.set_defaults(func=cmd_dataset)

    dr = sub.add_parser("doctor", help="what yt-dlp finds on this node (JS runtime, ffmpeg, cookies, proxy); exit 2 if the region cannot run")
    dr.add_argument("--region", default="local", help="deploy/regions/{REGION}.yaml (default: local)")
    dr.add_argument("--profile", help="path to a region profile (overrides --region)")
    dr.set_defaults(func=cmd_doctor)

    i = sub.add_parser("inspect", help="summarise a built dataset")
    i.add_argument("path")
    i.set_defaults(func=cmd_inspect)

    w = sub.add_parser("browse", help="look at a built dataset in a browser (read-only web app on 127.0.0.1)")
    w.add_argument("path", help="a dataset folder or s3://bucket/prefix")
    w.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    w.add_argument("--host", default="127.0.0.1", help="the interface to bind (default: loopback only)")
    w.add_argument("--s3-endpoint", default="", help="an S3-compatible endpoint (default: boto3's, e.g. AWS_ENDPOINT_URL)")
    w.set_defaults(func=cmd_browse)

    b = sub.add_parser("build-sample", help="build the sample video site")
    b.add_argument("--site-dir", default="build/site")
    b.set_defaults(func=cmd_build_sample)

    s = sub.add_parser("serve-sample", help="serve the sample video site on 127.0.0.1")
    s.add_argument("--site-dir", default="build/site")
    s.add_argument("--port", type=int, default=0, help="0: a free port")
    s.set_defaults(func=cmd_serve_sample)
    k = sub.add_parser("tokenizer", help="train the shared sentencepiece tokenizer on a dataset's text")
    k.add_argument("--dataset", default="data/local")
    k.add_argument("--vocab-size", type=int, default=4000)
    k.add_argument("--out", help="default: DATASET/tokenizer/spm.model")
    k.set_defaults(func=cmd_tokenizer)

    tr = sub.add_parser("train", help="pretrain or fine-tune (mhowto train --help)", add_help=False)
    tr.set_defaults(func=cmd_train, passthrough=True)

    e = sub.add_parser("eval", help="text->video and video->text retrieval per language")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--data", default="data/local")
    e.add_argument("--tokenizer", default="")
    e.add_argument("--videos", default="", help="a file of video ids to evaluate on (default: all)")
    e.add_argument("--out-dir", default="", help="where results.{json,md,png} go (default: the checkpoint's folder)")
    e.set_defaults(func=cmd_eval)

    r = sub.add_parser("recipe", help="the bundled recipe: prepare its data, pretrain (en-only vs 9 languages), eval")
    r.add_argument("stage", choices=["prepare", "pretrain", "eval"],
                   help="prepare: site, dataset, splits, tokenizer (pretrain does it too); pretrain; eval")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--prepared", action="store_true",
                   help="pretrain on what `recipe prepare` left in data/recipe, building nothing (a GPU box without the pipeline)")
    r.set_defaults(func=cmd_recipe)

    t = sub.add_parser("lid-table", help="measure lid.176 per language on real text; print the chosen thresholds")
    t.add_argument("--tracks", type=int, default=200, help="tracks per language")
    t.add_argument("--cues", type=int, default=8, help="names per track")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_lid_table)
    return p


def main(argv: list[str] | None = None) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if getattr(args, "passthrough", False):
        return args.func(args, rest)
    if rest:
        build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args.func(args)
    except (ConfigError, ManifestError) as e:  # a bad profile or manifest met past the start
        return _error(e)


if __name__ == "__main__":
    sys.exit(main())
