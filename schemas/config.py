"""Typed configuration: one frozen dataclass per section of a region profile.

``load_region(path)`` reads ``deploy/regions/{name}.yaml`` and validates it; an error
names the file and the dotted field (``download.retries: expected int, got 'x'``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from multihowto.schemas.frames import IMAGENET_MEAN, IMAGENET_STD
from multihowto.schemas.sample import LANGS


class ConfigError(ValueError):
    """A region profile or config section is invalid; the message names the field."""


@dataclass(frozen=True)
class SourceConfig:
    """Where the videos come from.

    ``sample_site``: the project's own site, built into ``site_dir`` and served on
    127.0.0.1 for the run. ``manifest``: a CSV (HowTo100M's, or ``video_id,url``),
    parquet or text list of ids/URLs at ``manifest``."""

    kind: str = "sample_site"
    site_dir: str = "build/site"
    manifest: str = ""
    url_template: str = "https://www.youtube.com/watch?v={id}"
    # A folder of released captions (how2_{lang}.json, or HowTo100M's caption.json for
    # English) to use instead of downloading subtitle tracks; empty: download them.
    captions: str = ""


@dataclass(frozen=True)
class DownloadConfig:
    format: str = "best[height<=360]/best"
    subtitle_format: str = "json3/vtt/srt/best"
    write_auto_subs: bool = True
    allowed_extractors: tuple[str, ...] = ("generic", "html5", "youtube")
    socket_timeout_s: float = 20.0
    retries: int = 3  # transient failures (429, 5xx, timeouts, truncated bodies) retried this often
    backoff_base_s: float = 1.0  # exponential backoff: base * 2**attempt, times a jitter in [0.5, 1.5)
    backoff_max_s: float = 60.0
    host_rate_per_s: float = 0.0  # token bucket per host and download actor; 0: no limit
    host_burst: int = 4
    allowed_hosts: tuple[str, ...] = ()  # URL allow-list (host names); empty: any host
    cookies_file: str = ""
    proxy: str = ""
    geo_bypass_country: str = ""
    rate_limit_bytes: int = 0


@dataclass(frozen=True)
class SubtitlesConfig:
    drop_sound_tags: bool = True
    min_cue_s: float = 0.05
    # Caps on one track (operators/caption_formats.py), each a recorded reason: a file
    # over max_track_bytes is refused unread (track_too_large); over max_cues cues,
    # refused before they are built (too_many_cues); a cue longer than max_cue_s is
    # dropped and counted (cue_too_long): its timing is broken, and it must not make
    # later stages plan clips for hours.
    max_track_bytes: int = 5 * 2**20
    max_cues: int = 20_000
    max_cue_s: float = 60.0


@dataclass(frozen=True)
class LangIdConfig:
    """Track verdicts (see operators/langid.py). Scores are fastText probabilities with
    the argmax restricted to the target languages."""

    # Too little text for a verdict: fewer than min_chars letter-equivalents
    # (operators/langid.py:text_units). Only letters and marks count (digits, punctuation
    # and spaces tell fastText nothing), and a Han, kana or Hangul character counts
    # cjk_weight letters, as one carries about a word's worth of text: a whole 9-character
    # Chinese sentence is 27 units, a 12-letter English fragment 12.
    min_chars: int = 12
    cjk_weight: float = 3.0
    # Chosen by `mhowto lid-table` on real CLDR text (README: "Language ID thresholds"):
    # reject_score is the grid value catching the most wrong-language tracks; each
    # floor is the largest that rejected at most 1% of genuine tracks of its language.
    reject_score: float = 0.2
    accept_floor: float = 0.1
    accept_floor_per_lang: dict[str, float] = field(
        default_factory=lambda: {"en": 0.15, "de": 0.15, "fr": 0.15, "ru": 0.15, "es": 0.15, "cs": 0.15,
                                 "sw": 0.05, "zh": 0.15, "vi": 0.15}
    )

    def floor(self, lang: str) -> float:
        return self.accept_floor_per_lang.get(lang, self.accept_floor)


@dataclass(frozen=True)
class AlignConfig:
    pivot: str = "en"
    min_clip_s: float = 1.0
    max_clip_s: float = 10.0
    min_overlap: float = 0.5


@dataclass(frozen=True)
class FramesConfig:
    fps: float = 1.0
    size: int = 224
    jpeg_quality: int = 90
    threads: int = 1


@dataclass(frozen=True)
class FeaturesConfig:
    """Optional per-second features from a TorchScript backbone at a local path."""

    enabled: bool = False
    model_path: str = ""
    batch_size: int = 32
    device: str = "auto"  # auto: CUDA when present, else CPU
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


FUSE_MODES = ("none", "light", "all")


@dataclass(frozen=True)
class ConcurrencyConfig:
    """Actors per stage; 0 for ``frames`` means one per CPU core Ray sees.

    ``fuse`` sets which stages share an actor (a video goes through them in turn there,
    nothing crossing Ray's object store between them):
    ``none``: every stage its own pool, each of its own size (to profile a stage);
    ``light``: subtitles, langid and align run in the ``download`` actors, frames in its
    own pool: downloads that wait on the network overlap, one frame actor per core
    decodes (remote sources);
    ``all``: one pool of ``frames`` actors runs every stage: best where a download costs
    CPU rather than waiting (the sample site on loopback, a small machine).
    """

    download: int = 4
    subtitles: int = 1
    langid: int = 1
    align: int = 1
    frames: int = 0
    fuse: str = "light"


@dataclass(frozen=True)
class RegionConfig:
    name: str = "local"
    ray_address: str = "local"
    output: str = "data/local"  # a folder, file://..., or s3://bucket/prefix
    s3_endpoint: str = ""  # S3-compatible endpoint URL; empty: AWS (or AWS_ENDPOINT_URL)
    s3_region: str = ""
    partition: str = "0/1"
    videos_per_unit: int = 4
    langs: tuple[str, ...] = LANGS
    source: SourceConfig = field(default_factory=SourceConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    subtitles: SubtitlesConfig = field(default_factory=SubtitlesConfig)
    langid: LangIdConfig = field(default_factory=LangIdConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    frames: FramesConfig = field(default_factory=FramesConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    concurrency: ConcurrencyConfig = field(default_factory=ConcurrencyConfig)

    @property
    def partition_index(self) -> tuple[int, int]:
        i, n = self.partition.split("/")
        return int(i), int(n)


def _coerce(value, hint, where: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return build(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_t, val_t = typing.get_args(hint)
        return {_coerce(k, key_t, f"{where}"): _coerce(v, val_t, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner, _) = typing.get_args(hint)
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint}")  # pragma: no cover


def build(cls, data: dict, where: str = ""):
    """Build dataclass ``cls`` from a mapping, rejecting unknown fields and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        hint = hints[name]
        if isinstance(hint, types.UnionType):  # pragma: no cover - no optional fields yet
            hint = typing.get_args(hint)[0]
        kwargs[name] = _coerce(value, hint, path)
    return cls(**kwargs)


def validate(cfg: RegionConfig) -> RegionConfig:
    def bad(path: str, why: str):
        raise ConfigError(f"{path}: {why}")

    if not re.fullmatch(r"\d+/\d+", cfg.partition):
        bad("partition", f"expected 'i/n', got {cfg.partition!r}")
    i, n = cfg.partition_index
    if n < 1 or not 0 <= i < n:
        bad("partition", f"need 0 <= i < n, got {cfg.partition!r}")
    if cfg.source.kind not in ("sample_site", "manifest"):
        bad("source.kind", f"expected 'sample_site' or 'manifest', got {cfg.source.kind!r}")
    if cfg.source.kind == "manifest" and not cfg.source.manifest:
        bad("source.manifest", "required when source.kind is 'manifest'")
    if cfg.source.captions and not Path(cfg.source.captions).is_dir():
        bad("source.captions", f"{cfg.source.captions!r} is not a folder")
    unknown = [lang for lang in cfg.langs if lang not in LANGS]
    if unknown or not cfg.langs:
        bad("langs", f"unknown language(s) {unknown}; supported: {', '.join(LANGS)}")
    if cfg.align.pivot not in cfg.langs:
        bad("align.pivot", f"{cfg.align.pivot!r} is not one of langs")
    if not 0 < cfg.align.min_clip_s < cfg.align.max_clip_s:
        bad("align.min_clip_s", f"need 0 < min_clip_s < max_clip_s, got {cfg.align.min_clip_s} and {cfg.align.max_clip_s}")
    if not 0 < cfg.align.min_overlap <= 1:
        bad("align.min_overlap", "must be in (0, 1]")
    if cfg.frames.fps <= 0:
        bad("frames.fps", "must be > 0")
    if not 16 <= cfg.frames.size <= 1024:
        bad("frames.size", "must be within [16, 1024]")
    if not 1 <= cfg.frames.jpeg_quality <= 100:
        bad("frames.jpeg_quality", "must be within [1, 100]")
    if cfg.features.enabled and not Path(cfg.features.model_path).is_file():
        bad("features.model_path", f"no TorchScript file at {cfg.features.model_path!r} (nothing is downloaded)")
    if cfg.features.device not in ("auto", "cpu", "cuda"):
        bad("features.device", "expected auto, cpu or cuda")
    if len(cfg.features.mean) != 3 or len(cfg.features.std) != 3:
        bad("features.mean", "mean and std need 3 values")
    if cfg.videos_per_unit < 1:
        bad("videos_per_unit", "must be >= 1")
    if cfg.download.retries < 0:
        bad("download.retries", "must be >= 0")
    if cfg.download.backoff_base_s < 0 or cfg.download.backoff_max_s < cfg.download.backoff_base_s:
        bad("download.backoff_base_s", "need 0 <= backoff_base_s <= backoff_max_s")
    if cfg.download.host_rate_per_s < 0 or cfg.download.host_burst < 1:
        bad("download.host_rate_per_s", "need host_rate_per_s >= 0 and host_burst >= 1")
    if cfg.download.cookies_file and not Path(cfg.download.cookies_file).is_file():
        bad("download.cookies_file", "no such file")
    for name in ("download", "subtitles", "langid", "align"):
        if getattr(cfg.concurrency, name) < 1:
            bad(f"concurrency.{name}", "must be >= 1")
    if cfg.concurrency.frames < 0:
        bad("concurrency.frames", "must be >= 0 (0: one per core)")
    if cfg.concurrency.fuse not in FUSE_MODES:
        bad("concurrency.fuse", f"must be one of {', '.join(FUSE_MODES)}")
    if not 1 <= cfg.subtitles.max_track_bytes <= 2**30:
        bad("subtitles.max_track_bytes", "must be within [1, 2**30]")
    if not 1 <= cfg.subtitles.max_cues <= 10**6:
        bad("subtitles.max_cues", "must be within [1, 1000000]")
    if not cfg.subtitles.min_cue_s < cfg.subtitles.max_cue_s <= 86400:
        bad("subtitles.max_cue_s", "need min_cue_s < max_cue_s <= 86400")
    if not 1 <= cfg.langid.cjk_weight <= 10:
        bad("langid.cjk_weight", "must be within [1, 10]")
    if not 0 < cfg.langid.accept_floor < cfg.langid.reject_score <= 1:
        bad("langid.accept_floor", "need 0 < accept_floor < reject_score <= 1")
    for lang, floor in cfg.langid.accept_floor_per_lang.items():
        if lang not in LANGS:
            bad(f"langid.accept_floor_per_lang.{lang}", "unknown language")
        if not 0 < floor < cfg.langid.reject_score:
            bad(f"langid.accept_floor_per_lang.{lang}", "need 0 < floor < reject_score")
    return cfg


def load_region(path: str | Path) -> RegionConfig:
    """Read and validate a region profile; errors name the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such region profile") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    data.setdefault("name", path.stem)
    try:
        return validate(build(RegionConfig, data))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def region_path(name: str, root: Path | None = None) -> Path:
    root = root or Path.cwd()
    return root / "deploy" / "regions" / f"{name}.yaml"
