"""The recipe's data preparation: splits, one query per caption, and a dataset that
follows its site."""

import json

import pytest

from multihowto.sample_site.spec import SiteSpec
from multihowto.trainer.recipe import (
    BUILT_FROM,
    SPLITS,
    RecipeConfig,
    RecipeNotPrepared,
    claim_folder,
    one_per_caption,
    prepare,
    speed,
    use_prepared,
)


def test_one_per_caption_keeps_the_first_clip_of_each_caption():
    clips = [
        {"key": "b_00001", "texts": {"en": "cat", "de": "Katze"}},
        {"key": "a_00003", "texts": {"en": "cat", "de": "Katze"}},
        {"key": "a_00001", "texts": {"en": "dog"}},
        {"key": "c_00000", "texts": {"de": "Hund"}},
    ]
    kept = one_per_caption(clips)
    assert [c["key"] for c in kept] == ["a_00001", "a_00003", "c_00000"]


def test_runs_survive_a_resume_but_not_a_new_dataset(tmp_path):
    runs = tmp_path / "runs"
    (runs / "english-only-s0" / "pretrain").mkdir(parents=True)
    ckpt = runs / "english-only-s0" / "pretrain" / "ckpt.pt"
    ckpt.write_bytes(b"old")  # runs from before stamps existed: not trusted
    logs = []
    claim_folder(runs, "site A", "starting afresh", logs.append)
    assert not ckpt.exists() and len(logs) == 1
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"A")
    claim_folder(runs, "site A", "starting afresh", logs.append)  # the same dataset: a killed recipe resumes
    assert ckpt.read_bytes() == b"A" and len(logs) == 1
    claim_folder(runs, "site B", "starting afresh", logs.append)
    assert not ckpt.exists() and (runs / BUILT_FROM).read_text() == "site B" and len(logs) == 2


def test_speed_line_says_when_a_session_had_nothing_to_do():
    assert speed({"samples_per_s": None, "tflops": None, "device": "cpu"}) == "already trained"
    line = speed({"samples_per_s": 812.4, "tflops": 0.2, "device": "cuda", "mfu": 0.000202})
    assert line == "812 samples/s, 0.200 TFLOP/s on cuda (0.02% of bf16 peak)"


def _site(seed: int) -> SiteSpec:
    return SiteSpec(n_videos=6, cues_per_video=(4, 5), cue_seconds=(1.5, 2.0), fps=5, seed=seed, rolling_en=(),
                    wrong_language=(-1, "de", "fr"), missing_langs=(-1, ()), corrupt_video=-1, emoji_pool=8)




@pytest.mark.slow
def test_prepare_builds_splits_and_rebuilds_a_dataset_made_from_another_site(tmp_path):
    import ray

    from multihowto.trainer.data import DataConfig, clip_stream

    (tmp_path / "deploy" / "regions").mkdir(parents=True)
    (tmp_path / "deploy" / "regions" / "recipe.yaml").write_text(
        f"name: recipe\noutput: {tmp_path / 'data'}\nvideos_per_unit: 3\n"
        f"source:\n  kind: sample_site\n  site_dir: {tmp_path / 'site'}\n"
        "download:\n  allowed_extractors: [generic, html5]\n"
    )
    logs: list[str] = []
    try:
        for seed in (1, 2):
            rc = RecipeConfig(root=str(tmp_path), vocab_size=120, site=_site(seed))
            data = prepare(rc, log=logs.append)
            truth = json.loads((tmp_path / "site" / "truth.json").read_text())
            want = {(vid, c["texts"]["en"]) for vid, v in truth.items() for c in v["cues"]}
            got = {(c["video_id"], c["texts"]["en"]) for c in clip_stream(DataConfig(shards=str(data), langs=("en",), shuffle=0))}
            assert got == want  # the dataset holds this site's clips, none of the last one's
            split_ids = [v for s in SPLITS for v in (data / "splits" / f"{s}.txt").read_text().split()]
            assert sorted(split_ids) == sorted(truth)
            assert (data / "tokenizer" / "spm.model").exists()
        # the same site, another vocabulary: the shards stay, the tokenizer is retrained
        shards = {p.name: p.stat().st_mtime_ns for p in data.glob("shard-*")}
        prepare(RecipeConfig(root=str(tmp_path), vocab_size=160, site=_site(2)), log=logs.append)
        assert {p.name: p.stat().st_mtime_ns for p in data.glob("shard-*")} == shards
        assert (data / "tokenizer" / "spm.model").exists()
    finally:
        ray.shutdown()
    assert sum("was built from another recipe site" in line for line in logs) == 1
    assert sum("trained for another vocab size" in line for line in logs) == 1
    # what prepare left is what a machine without the pipeline trains on
    assert use_prepared(RecipeConfig(root=str(tmp_path), vocab_size=160, prepared=True)) == data
    with pytest.raises(RecipeNotPrepared, match="vocab_size 120"):
        use_prepared(RecipeConfig(root=str(tmp_path), vocab_size=120, prepared=True))
    (data / "splits" / "test.txt").unlink()
    with pytest.raises(RecipeNotPrepared, match="test.txt is missing"):
        use_prepared(RecipeConfig(root=str(tmp_path), vocab_size=160, prepared=True))


def test_eval_before_pretrain_says_what_to_run(tmp_path, monkeypatch, capsys):
    from multihowto.pipeline.cli import main

    (tmp_path / "deploy" / "regions").mkdir(parents=True)
    (tmp_path / "deploy" / "regions" / "recipe.yaml").write_text(
        f"name: recipe\noutput: {tmp_path / 'data'}\nsource:\n  kind: sample_site\n  site_dir: {tmp_path / 'site'}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["recipe", "eval", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "make pretrain" in err and "spm.model" in err


def test_pretrain_on_a_prepared_dataset_that_is_not_there_says_what_to_run(tmp_path, monkeypatch, capsys):
    from multihowto.pipeline.cli import main

    (tmp_path / "deploy" / "regions").mkdir(parents=True)
    (tmp_path / "deploy" / "regions" / "recipe.yaml").write_text(
        f"name: recipe\noutput: {tmp_path / 'data'}\nsource:\n  kind: sample_site\n  site_dir: {tmp_path / 'site'}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["recipe", "pretrain", "--prepared", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "mhowto recipe prepare" in err and "_built_from is missing" in err
    assert not (tmp_path / "site").exists() and not (tmp_path / "runs").exists()  # built nothing


def _fake_run(non_en_r1: float, en_r1: float = 50.0) -> dict:
    from multihowto.schemas.sample import LANGS

    metrics = lambda r1: {"R@1": r1, "R@5": r1, "R@10": r1, "MedR": 2.0, "n": 10}  # noqa: E731
    return {lang: {"t2v": metrics(en_r1 if lang == "en" else non_en_r1), "v2t": metrics(0.0)} for lang in LANGS}


@pytest.mark.parametrize("multi, beyond", [((30.0, 20.0, 25.0), True), ((12.0, 4.0, 6.0), False)])
def test_summary_compares_the_gap_with_the_largest_seed_spread(multi, beyond):
    from multihowto.trainer.recipe import results_markdown, run_key, summarise

    results = {"protocol": "p", "test_clips": 10, "runs": {}}
    for seed, (en_only, ml) in enumerate(zip((5.0, 6.0, 4.0), multi, strict=True)):
        for variant, r1 in (("english-only", en_only), ("multilingual", ml)):
            results["runs"][run_key(variant, seed)] = _fake_run(r1)
            results["runs"][run_key(variant, seed, "translate-train")] = _fake_run(r1 + 10)
    s = summarise(results, (0, 1, 2))
    assert s["gap_non_english_R@1"] == pytest.approx(sum(multi) / 3 - 5.0)
    assert s["max_seed_spread"] == pytest.approx(max(max(multi) - min(multi), 2.0))
    assert s["multilingual_wins_beyond_spread"] is beyond
    assert s["translate-train"]["english-only"]["mean_non_english_R@1"] == pytest.approx(15.0)
    results["summary"] = s
    md = results_markdown(results, (0, 1, 2))
    assert ("NOT beyond" in md) is not beyond and "Translate-train" in md
    # one seed has no spread to compare the gap with
    one = summarise(results, (0,))
    assert one["multilingual_wins_beyond_spread"] is None and one["max_seed_spread"] == 0
    assert "no spread to judge it by" in results_markdown({**results, "summary": one}, (0,))
