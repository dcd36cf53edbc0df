"""``mhowto``: the command line.

    mhowto dataset --region local      build the dataset of a region profile
    mhowto inspect data/local          what a built dataset holds
    mhowto build-sample                build the sample video site
    mhowto serve-sample                serve it on 127.0.0.1 until interrupted
    mhowto lid-table                   language ID accuracy per language, thresholds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from multihowto.schemas.config import ConfigError, load_region, region_path


def cmd_dataset(args: argparse.Namespace) -> int:
    from multihowto.pipeline.plan import PlanMismatch
    from multihowto.pipeline.report import write_report
    from multihowto.pipeline.run import run_dataset

    path = Path(args.profile) if args.profile else region_path(args.region)
    try:
        cfg = load_region(path)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[region] {cfg.name}: output {cfg.output}, ray {cfg.ray_address}, partition {cfg.partition}")
    try:
        summary = run_dataset(cfg)
    except PlanMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_report(Path(cfg.output))
    print(
        f"[done] {summary.units_committed} shards committed now, {summary.units_done_before} already done "
        f"({summary.units_total} in all); {summary.clips} new clips from {summary.videos} videos "
        f"in {summary.seconds:.1f}s"
    )
    print(f"[card] {Path(cfg.output) / 'README.md'}")
    print()
    from multihowto.pipeline.inspect_dataset import inspect_dataset

    print(inspect_dataset(cfg.output))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from multihowto.pipeline.inspect_dataset import inspect_dataset

    print(inspect_dataset(args.path))
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mhowto", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dataset", help="build the dataset of a region profile")
    d.add_argument("--region", default="local", help="deploy/regions/{REGION}.yaml (default: local)")
    d.add_argument("--profile", help="path to a region profile (overrides --region)")
    d.set_defaults(func=cmd_dataset)

    i = sub.add_parser("inspect", help="summarise a built dataset")
    i.add_argument("path")
    i.set_defaults(func=cmd_inspect)

    b = sub.add_parser("build-sample", help="build the sample video site")
    b.add_argument("--site-dir", default="build/site")
    b.set_defaults(func=cmd_build_sample)

    s = sub.add_parser("serve-sample", help="serve the sample video site on 127.0.0.1")
    s.add_argument("--site-dir", default="build/site")
    s.add_argument("--port", type=int, default=0, help="0: a free port")
    s.set_defaults(func=cmd_serve_sample)
    t = sub.add_parser("lid-table", help="measure lid.176 per language on real text; print the chosen thresholds")
    t.add_argument("--tracks", type=int, default=200, help="tracks per language")
    t.add_argument("--cues", type=int, default=8, help="names per track")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_lid_table)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
