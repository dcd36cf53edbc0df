from pathlib import Path

import pytest

from multihowto.schemas.config import ConfigError, load_region

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
