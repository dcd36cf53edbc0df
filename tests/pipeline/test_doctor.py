"""`mhowto doctor` and the preflight (#15.10): the JS runtime this project installs is
found; a YouTube region without one is refused by name; one without YouTube is not."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from multihowto.pipeline.cli import main
from multihowto.pipeline.doctor import inspect_node, preflight
from multihowto.schemas.config import load_region

ROOT = Path(__file__).resolve().parents[2]


def hidden_runtime(cfg):
    return dataclasses.replace(cfg, download=dataclasses.replace(cfg.download, js_runtimes=("deno:/nonexistent/deno",)))


def test_the_installed_runtime_is_found_for_the_youtube_regions():
    for region in ("aws-us", "aws-eu"):
        cfg = load_region(ROOT / "deploy" / "regions" / f"{region}.yaml")
        assert preflight(cfg) == [], region
        runtime = next(f for f in inspect_node(cfg) if f.name == "JS runtime")
        assert runtime.ok and runtime.detail.startswith("deno ") and "/deno" in runtime.detail


def test_a_youtube_region_without_its_runtime_is_refused_by_name(tmp_path, capsys):
    cfg = hidden_runtime(load_region(ROOT / "deploy" / "regions" / "aws-us.yaml"))
    [problem] = preflight(cfg)
    assert problem.startswith("JS runtime: none found") and "/nonexistent/deno" in problem
    # the same through the CLI: a profile file naming a runtime that is not there
    data = yaml.safe_load((ROOT / "deploy" / "regions" / "aws-us.yaml").read_text())
    data["download"]["js_runtimes"] = ["node:/nonexistent/node"]
    profile = tmp_path / "yt.yaml"
    profile.write_text(yaml.safe_dump(data))
    assert main(["doctor", "--profile", str(profile)]) == 2
    err = capsys.readouterr().err
    assert "cannot run here: JS runtime" in err and "node" in err


def test_a_region_without_youtube_does_not_need_a_runtime(capsys):
    cfg = hidden_runtime(load_region(ROOT / "deploy" / "regions" / "local.yaml"))
    assert preflight(cfg) == []
    assert main(["doctor", "--profile", str(ROOT / "deploy" / "regions" / "local.yaml")]) == 0
    assert "JS runtime: deno" in capsys.readouterr().out


def test_a_youtube_allow_list_without_its_media_hosts_is_refused():
    cfg = load_region(ROOT / "deploy" / "regions" / "aws-eu.yaml")
    cfg = dataclasses.replace(cfg, download=dataclasses.replace(cfg.download, allowed_hosts=("www.youtube.com", "youtu.be")))
    assert preflight(cfg) == ["allowed hosts: www.youtube.com, youtu.be (YouTube needs .googlevideo.com too)"]


def test_an_unreadable_cookies_file_is_named(tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n")
    cfg = load_region(ROOT / "deploy" / "regions" / "aws-us.yaml")
    cfg = dataclasses.replace(cfg, download=dataclasses.replace(cfg.download, cookies_file=str(cookies)))
    assert preflight(cfg) == []
    cookies.unlink()
    assert preflight(cfg) == [f"cookies file: {cookies} not readable"]


def test_the_downloader_hands_the_runtime_to_yt_dlp():
    from multihowto.operators.download import Downloader

    cfg = load_region(ROOT / "deploy" / "regions" / "aws-us.yaml")
    d = Downloader(cfg.download, cfg.langs)
    d.setup()
    assert d.ydl.params["js_runtimes"] == {"deno": {}} and d.ydl.params["remote_components"] == set()
    d = Downloader(hidden_runtime(cfg).download, cfg.langs)
    d.setup()
    assert d.ydl.params["js_runtimes"] == {"deno": {"path": "/nonexistent/deno"}}
