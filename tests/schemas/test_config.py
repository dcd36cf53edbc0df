from pathlib import Path

import pytest

from multihowto.schemas.config import (
    MAX_PROFILE_BYTES,
    RANGES,
    ConfigError,
    RegionConfig,
    load_region,
    numeric_fields,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_local_profile_is_valid():
    cfg = load_region(ROOT / "deploy" / "regions" / "local.yaml")
    assert cfg.name == "local"
    assert cfg.source.kind == "sample_site"
    assert len(cfg.langs) == 9
    assert cfg.partition_index == (0, 1)


@pytest.mark.parametrize(
    "text, field",
    [
        ("download:\n  fromat: best\n", "download.fromat: unknown field"),
        ("download:\n  retries: many\n", "download.retries: expected int"),
        ("frames:\n  fps: yes\n", "frames.fps: expected a number"),
        ("partition: 3/2\n", "partition: need 0 <= i < n"),
        ("partition: half\n", "partition: expected 'i/n'"),
        ("langs: [en, xx]\n", "langs: unknown language"),
        ("align:\n  min_clip_s: 12\n  max_clip_s: 10\n", "align.min_clip_s"),
        ("source:\n  kind: manifest\n", "source.manifest: required"),
        ("langs: en\n", "langs: expected a list"),
    ],
)
def test_bad_profiles_name_the_field(tmp_path, text, field):
    with pytest.raises(ConfigError) as err:
        load_region(write(tmp_path, text))
    assert field in str(err.value)
    assert "r.yaml" in str(err.value)


def test_missing_profile_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such region profile"):
        load_region(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("frames:\n  fps: .nan\n", "frames.fps: must be a finite number"),
        ("frames:\n  fps: -.inf\n", "frames.fps: must be a finite number"),
        ("frames:\n  fps: 1.0e+400\n", "frames.fps: must be a finite number"),
        ("frames:\n  fps: 1000\n", "frames.fps: must be within (0, 30]"),
        ("frames:\n  fps: 0\n", "frames.fps: must be within (0, 30]"),
        ("frames:\n  threads: -1\n", "frames.threads: must be within [1, 64]"),
        ("frames:\n  threads: 65\n", "frames.threads: must be within [1, 64]"),
        ("frames:\n  jpeg_quality: 0\n", "frames.jpeg_quality: must be within [1, 100]"),
        ("frames:\n  size: 8\n", "frames.size: must be within [16, 1024]"),
        ("align:\n  min_clip_s: 1.0e-5\n", "align.min_clip_s: must be within [0.1, 600]"),
        ("align:\n  max_clip_s: 100000\n", "align.max_clip_s: must be within"),
        ("align:\n  min_overlap: 0\n", "align.min_overlap: must be within (0, 1]"),
        ("concurrency:\n  workers: 100001\n", "concurrency.workers: must be within [0, 100000]"),
        ("concurrency:\n  download: 0\n", "concurrency.download: must be within [1, 256]"),
        ("download:\n  socket_timeout_s: 0\n", "download.socket_timeout_s: must be within (0, 600]"),
        ("download:\n  socket_timeout_s: 601\n", "download.socket_timeout_s: must be within (0, 600]"),
        ("download:\n  rate_limit_bytes: -5\n", "download.rate_limit_bytes: must be within [0, "),
        ("download:\n  retries: 21\n", "download.retries: must be within [0, 20]"),
        ("download:\n  retries: 10000000000000000000000000000000000000000000000000000000000000000000000000000\n",
         "download.retries: must be within [0, 20], got 1000"),
        ("download:\n  backoff_base_s: 10\n  backoff_max_s: 5\n", "download.backoff_max_s: need backoff_base_s <= backoff_max_s"),
        ("download:\n  host_burst: 0\n", "download.host_burst: must be within [1, 10000]"),
        ("download:\n  host_rate_per_s: -1\n", "download.host_rate_per_s: must be within [0, 10000]"),
        ("subtitles:\n  min_cue_s: -1\n", "subtitles.min_cue_s: must be within [0, 60]"),
        ("langid:\n  min_chars: -1\n", "langid.min_chars: must be within [0, 10000]"),
        ("langid:\n  accept_floor_per_lang: {en: .nan}\n", "langid.accept_floor_per_lang.en: must be a finite number"),
        ("langid:\n  accept_floor: 0.5\n  reject_score: 0.4\n", "langid.accept_floor: need accept_floor < reject_score"),
        ("features:\n  mean: [0.5, .inf, 0.5]\n", "features.mean[1]: must be a finite number"),
        ("features:\n  std: [0.2, 0, 0.2]\n", "features.std[1]: must be within (0, 10]"),
        ("features:\n  batch_size: 0\n", "features.batch_size: must be within [1, 4096]"),
        ("videos_per_unit: 0\n", "videos_per_unit: must be within [1, 100000]"),
        ("videos_per_unit: 100001\n", "videos_per_unit: must be within [1, 100000]"),
        ("langs: [en, de, en]\n", "langs: listed more than once: en"),
        ("source:\n  url_template: 'https://example.org/{0}'\n", "source.url_template: only {id} may be filled in"),
        ("1: x\n", "1: unknown field"),
    ],
)
def test_out_of_range_values_are_refused_by_field(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_region(write(tmp_path, text))
    assert message in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "r.yaml"))


def test_every_numeric_field_has_a_range_that_holds_its_default():
    cfg = RegionConfig()
    assert {key for key, _, _ in numeric_fields(cfg)} == set(RANGES)
    assert validate(cfg) is cfg
    for profile in (ROOT / "deploy" / "regions").glob("*.yaml"):
        load_region(profile)


def test_a_long_value_is_quoted_short(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_region(write(tmp_path, f"frames:\n  fps: '{'x' * 200_000}'\n"))
    msg = str(err.value)
    assert "frames.fps: expected a number, got 'xxx" in msg and len(msg) < 200 + len(str(tmp_path))
    with pytest.raises(ConfigError) as err:
        load_region(write(tmp_path, f"? {'k' * 100_000}\n: 1\n"))
    assert "unknown field" in str(err.value) and len(str(err.value)) < 400 + len(str(tmp_path))


def test_a_yaml_alias_bomb_is_refused_unexpanded(tmp_path):
    # the "billion laughs": nine levels of nine aliases, 9**9 strings from 1.3 KB
    levels = ['    - &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"    - &{name} [{', '.join([f'*{prev}'] * 9)}]")
    text = "source:\n  manifest:\n" + "\n".join(levels) + "\n"
    assert len(text) < 1500
    with pytest.raises(ConfigError) as err:
        load_region(write(tmp_path, text))
    msg = str(err.value)
    assert "r.yaml: not valid YAML: YAML aliases (*name) are not allowed" in msg and "line 4" in msg
    assert "\n" not in msg and len(msg) < 200 + len(str(tmp_path))


def test_a_profile_past_the_size_cap_is_refused_unread(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("# padding\n" * (MAX_PROFILE_BYTES // 10 + 1) + "name: big\n")
    with pytest.raises(ConfigError, match="big.yaml: larger than 1 MiB"):
        load_region(p)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "a binary file, not a YAML region profile"),
        ("name: caf\u00e9\n".encode("cp1252"), "not UTF-8 text"),
        (b"a: " + b"[" * 50_000, "not valid YAML"),
        (b"frames: {fps: 1\n", "not valid YAML"),
        (b"- just\n- a list\n", "expected a mapping at the top level"),
    ],
)
def test_an_unreadable_profile_is_one_line_naming_the_file(tmp_path, content, message):
    p = tmp_path / "bad.yaml"
    p.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_region(p)
    assert str(err.value).startswith(f"{p}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_folder_is_not_a_profile(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_region(tmp_path)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_bom_profiles_are_read(tmp_path, encoding):
    p = tmp_path / "bom.yaml"
    p.write_bytes("name: bom\nframes:\n  fps: 2\n".encode(encoding))
    cfg = load_region(p)
    assert cfg.name == "bom" and cfg.frames.fps == 2.0
