"""Typed configuration: one frozen dataclass per section of a region profile.

``load_region(path)`` reads ``deploy/regions/{name}.yaml`` and validates it; an error
names the file and the dotted field (``download.retries: expected int, got 'x'``).
Every numeric field has its valid range in ``RANGES``; an error quotes a value only
through a bounded repr, and a profile is read only up to ``MAX_PROFILE_BYTES``, without
YAML aliases (so a small file cannot expand into a huge value).
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from multihowto.schemas.download import parse_host_entry
from multihowto.schemas.frames import IMAGENET_MEAN, IMAGENET_STD
from multihowto.schemas.sample import LANGS


class ConfigError(ValueError):
    """A region profile or config section is invalid; the message names the field."""


MAX_PROFILE_BYTES = 1 << 20  # a region profile is a few KB; anything past 1 MiB is refused unread
_QUOTE_CHARS = 60
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = _QUOTE_CHARS
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4
_repr.maxlevel = 2


def quote(value) -> str:
    """``repr(value)`` bounded to about 60 characters, nested values elided, on one line:
    what an error message may say about a value it was given."""
    text = _repr.repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


def _line(text: str) -> str:
    """Free text (a YAML parser's complaint) on one line, bounded like :func:`quote`."""
    text = " ".join(str(text).split())
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


def _name(key) -> str:
    """A mapping key as it may appear in a dotted field name."""
    return key if isinstance(key, str) and key.isprintable() and len(key) <= 40 else quote(key)


@dataclass(frozen=True)
class Range:
    """A closed interval ``[lo, hi]``; ``open_lo`` leaves ``lo`` itself out: ``(lo, hi]``."""

    lo: float
    hi: float
    open_lo: bool = False

    def __contains__(self, value: float) -> bool:
        return (self.lo < value if self.open_lo else self.lo <= value) and value <= self.hi

    def __str__(self) -> str:
        return f"{'(' if self.open_lo else '['}{self.lo:g}, {self.hi:g}]"


# The valid range of every numeric field of a region profile (a dict's or tuple's range
# holds for each of its values). Rules between fields are in validate().
RANGES: dict[str, Range] = {
    "videos_per_unit": Range(1, 100_000),
    "download.socket_timeout_s": Range(0, 600, open_lo=True),
    "download.retries": Range(0, 20),
    "download.backoff_base_s": Range(0, 600),
    "download.backoff_max_s": Range(0, 3600),
    "download.host_rate_per_s": Range(0, 10_000),  # requests/s; 0: no limit
    "download.host_burst": Range(1, 10_000),
    "download.rate_limit_bytes": Range(0, 1 << 40),  # bytes/s; 0: no limit
    "download.deadline_s": Range(0, 86_400, open_lo=True),
    "download.max_filesize": Range(1, 1 << 40),
    "download.max_track_bytes": Range(1, 1 << 30),
    "subtitles.min_cue_s": Range(0, 60),
    "subtitles.max_track_bytes": Range(1, 1 << 30),
    "subtitles.max_cues": Range(1, 1_000_000),
    "subtitles.max_cue_s": Range(0, 86_400, open_lo=True),
    "langid.cjk_weight": Range(1, 10),
    "langid.min_chars": Range(0, 10_000),
    "langid.reject_score": Range(0, 1, open_lo=True),
    "langid.accept_floor": Range(0, 1, open_lo=True),
    "langid.accept_floor_per_lang": Range(0, 1, open_lo=True),
    "align.min_clip_s": Range(0.1, 600),
    "align.max_clip_s": Range(0.1, 3600),
    "align.min_overlap": Range(0, 1, open_lo=True),
    "align.max_clips_per_video": Range(1, 1_000_000),
    "frames.fps": Range(0, 30, open_lo=True),
    "frames.size": Range(16, 1024),
    "frames.jpeg_quality": Range(1, 100),
    "frames.threads": Range(1, 64),
    "frames.timeout_s": Range(0, 86_400, open_lo=True),
    "frames.max_frames": Range(1, 1_000_000),
    "features.batch_size": Range(1, 4096),
    "features.mean": Range(0, 1),
    "features.std": Range(0, 10, open_lo=True),
    "concurrency.workers": Range(0, 100_000),  # 0: one per core of the cluster
    "concurrency.download": Range(1, 256),
}


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
    # Checked before every request yt-dlp makes (redirect hops, media, tracks, fragments):
    # entries are host (ports 80/443), host:port, .suffix (subdomains), IP literals
    # (schemas/download.py). Empty: any host. Either way an address that is not global
    # (loopback, private, link-local, CGNAT, cloud metadata) is refused unless an IP-literal
    # entry or ``allowed_networks`` (CIDRs, e.g. 127.0.0.0/8) names it.
    allowed_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[str, ...] = ()
    deadline_s: float = 600.0  # wall clock per video: page, media, tracks, retries and backoff
    max_filesize: int = 1 << 30  # bytes one video's download may read (Content-Length and body)
    max_track_bytes: int = 8 << 20  # bytes per subtitle track; a larger one loses that language
    # yt-dlp's JavaScript runtimes for YouTube, in its --js-runtimes form: name or name:path
    js_runtimes: tuple[str, ...] = ("deno",)
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
    # A video whose pivot track would give more clips than this fails ``too_many_clips``
    # before any is made (HowTo100M averages ~110 clips a video; 2 h of 2 s cues is 3600).
    max_clips_per_video: int = 5000


FRAME_SKIP_MODES = ("none", "noref", "bidir", "nokey")  # ffmpeg's -skip_frame names


@dataclass(frozen=True)
class FramesConfig:
    fps: float = 1.0
    size: int = 224
    jpeg_quality: int = 90
    threads: int = 1
    # Wall-clock bound on one video's ffmpeg run; past it ffmpeg's process group is killed
    # and the video fails as `timeout`. 2 h of 360p30 h264 decodes in about 140 s on one
    # (shared) core here: 600 s leaves room for slower cores and larger formats.
    timeout_s: float = 600.0
    # Most frames one video may yield (7200 at 1 fps: 2 h); more fails as `video_too_long`,
    # and ffmpeg's output is capped to this many frames' worth of bytes.
    max_frames: int = 7200
    # Frames the decoder may skip (ffmpeg's -skip_frame): none (exact), noref (frames no
    # other frame refers to), bidir (B-frames), nokey (all but keyframes; the decode then
    # ends at the last keyframe). Faster, but a kept frame can lie frames before its time:
    # bench/frames_timing.py measures both; `none` stays the default, as no skip mode kept
    # every frame within one source-frame period.
    skip: str = "none"


@dataclass(frozen=True)
class FeaturesConfig:
    """Optional per-second features from a TorchScript backbone at a local path."""

    enabled: bool = False
    model_path: str = ""
    batch_size: int = 32
    device: str = "auto"  # auto: CUDA when present, else CPU
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


JS_RUNTIMES = ("deno", "node", "bun", "quickjs")  # what yt-dlp's js_runtimes accepts


@dataclass(frozen=True)
class ConcurrencyConfig:
    """How many units run at once and how many downloads overlap inside each.

    A work unit runs whole in one worker process (download, subtitles, language ID,
    alignment, frames, shard). ``workers``: units in flight at once, 0 for one per CPU
    core of the cluster. ``download``: download threads inside each worker, so that
    network waits overlap while the worker's core decodes frames.
    """

    workers: int = 0
    download: int = 4


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
            raise ConfigError(f"{where}: expected a mapping, got {quote(value)}")
        return build(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {quote(value)}")
        key_t, val_t = typing.get_args(hint)
        return {_coerce(k, key_t, f"{where}"): _coerce(v, val_t, f"{where}.{_name(k)}") for k, v in value.items()}
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {quote(value)}")
        (inner, _) = typing.get_args(hint)
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {quote(value)}")
        number = float(value) if abs(value) < 1e300 else math.inf  # a huge int would overflow
        if not math.isfinite(number):
            raise ConfigError(f"{where}: must be a finite number, got {quote(value)}")
        return number
    if hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {quote(value)}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint}")  # pragma: no cover


def build(cls, data: dict, where: str = ""):
    """Build dataclass ``cls`` from a mapping, rejecting unknown fields and wrong types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [key for key in data if key not in names]
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"{prefix}{_name(unknown[0])}: unknown field (known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        hint = hints[name]
        if isinstance(hint, types.UnionType):  # pragma: no cover - no optional fields yet
            hint = typing.get_args(hint)[0]
        kwargs[name] = _coerce(value, hint, path)
    return cls(**kwargs)


def numeric_fields(obj, where: str = ""):
    """``(range key, dotted name, value)`` for every number in a config, nested sections,
    dict values (``langid.accept_floor_per_lang.en``) and tuple items (``features.mean[1]``)
    included."""
    def is_number(v) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        path = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(value):
            yield from numeric_fields(value, path)
        elif isinstance(value, dict):
            yield from ((path, f"{path}.{_name(k)}", v) for k, v in value.items() if is_number(v))
        elif isinstance(value, tuple):
            yield from ((path, f"{path}[{i}]", v) for i, v in enumerate(value) if is_number(v))
        elif is_number(value):
            yield path, path, value


def validate(cfg: RegionConfig) -> RegionConfig:
    """Refuse a config with a value out of its range (``RANGES``) or fields that disagree;
    the error names the dotted field."""
    def bad(path: str, why: str):
        raise ConfigError(f"{path}: {why}")

    for key, name, value in numeric_fields(cfg):
        if not math.isfinite(value):
            bad(name, f"must be a finite number, got {quote(value)}")
        if key in RANGES and value not in RANGES[key]:
            bad(name, f"must be within {RANGES[key]}, got {quote(value)}")
    if not re.fullmatch(r"\d+/\d+", cfg.partition):
        bad("partition", f"expected 'i/n', got {quote(cfg.partition)}")
    i, n = cfg.partition_index
    if n < 1 or not 0 <= i < n:
        bad("partition", f"need 0 <= i < n, got {quote(cfg.partition)}")
    if cfg.source.kind not in ("sample_site", "manifest"):
        bad("source.kind", f"expected 'sample_site' or 'manifest', got {quote(cfg.source.kind)}")
    if cfg.source.kind == "manifest" and not cfg.source.manifest:
        bad("source.manifest", "required when source.kind is 'manifest'")
    try:
        cfg.source.url_template.format(id="x")
    except (KeyError, IndexError, ValueError, AttributeError):
        bad("source.url_template", f"only {{id}} may be filled in, got {quote(cfg.source.url_template)}")
    if cfg.source.captions and not Path(cfg.source.captions).is_dir():
        bad("source.captions", f"{quote(cfg.source.captions)} is not a folder")
    unknown = [lang for lang in cfg.langs if lang not in LANGS]
    if unknown or not cfg.langs:
        bad("langs", f"unknown language(s) {quote(unknown)}; supported: {', '.join(LANGS)}")
    twice = sorted(lang for lang, count in collections.Counter(cfg.langs).items() if count > 1)
    if twice:
        bad("langs", f"listed more than once: {', '.join(twice)}")
    if cfg.align.pivot not in cfg.langs:
        bad("align.pivot", f"{quote(cfg.align.pivot)} is not one of langs")
    if not cfg.align.min_clip_s < cfg.align.max_clip_s:
        bad("align.min_clip_s", f"need min_clip_s < max_clip_s, got {cfg.align.min_clip_s:g} and {cfg.align.max_clip_s:g}")
    if cfg.frames.skip not in FRAME_SKIP_MODES:
        bad("frames.skip", f"must be one of {', '.join(FRAME_SKIP_MODES)}")
    if cfg.features.enabled and not Path(cfg.features.model_path).is_file():
        bad("features.model_path", f"no TorchScript file at {quote(cfg.features.model_path)} (nothing is downloaded)")
    if cfg.features.device not in ("auto", "cpu", "cuda"):
        bad("features.device", "expected auto, cpu or cuda")
    if len(cfg.features.mean) != 3 or len(cfg.features.std) != 3:
        bad("features.mean", "mean and std need 3 values")
    if cfg.download.backoff_max_s < cfg.download.backoff_base_s:
        bad("download.backoff_max_s", "need backoff_base_s <= backoff_max_s")
    if cfg.download.cookies_file and not Path(cfg.download.cookies_file).is_file():
        bad("download.cookies_file", "no such file")
    for i, entry in enumerate(cfg.download.allowed_hosts):
        try:
            parse_host_entry(entry)
        except ValueError as e:
            bad(f"download.allowed_hosts[{i}]", str(e))
    for i, net in enumerate(cfg.download.allowed_networks):
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            bad(f"download.allowed_networks[{i}]", f"expected a CIDR network such as 127.0.0.0/8, got {net[:80]!r}")
    for i, rt in enumerate(cfg.download.js_runtimes):
        if rt.split(":", 1)[0] not in JS_RUNTIMES:
            bad(f"download.js_runtimes[{i}]", f"{rt[:80]!r}: expected NAME or NAME:PATH with NAME one of {', '.join(JS_RUNTIMES)}")
    if not cfg.subtitles.min_cue_s < cfg.subtitles.max_cue_s:
        bad("subtitles.max_cue_s", "need min_cue_s < max_cue_s")
    if not cfg.langid.accept_floor < cfg.langid.reject_score:
        bad("langid.accept_floor", "need accept_floor < reject_score")
    for lang, floor in cfg.langid.accept_floor_per_lang.items():
        if lang not in LANGS:
            bad(f"langid.accept_floor_per_lang.{_name(lang)}", "unknown language")
        if not floor < cfg.langid.reject_score:
            bad(f"langid.accept_floor_per_lang.{lang}", "need floor < reject_score")
    return cfg


class _ProfileLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases: ``*name`` could make a few bytes stand for a
    value of any size (the "billion laughs"), and a profile has no use for them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in a region profile", self.peek_event().start_mark
            )
        return super().compose_node(parent, index)


def _profile_text(path: Path) -> str:
    """The profile's text, read up to MAX_PROFILE_BYTES; UTF-8 (a BOM allowed) or UTF-16
    with a BOM. A binary file, a folder, an unreadable or an oversized file is refused."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PROFILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such region profile") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a region profile") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the region profile ({e.strerror or e})") from None
    if len(data) > MAX_PROFILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_PROFILE_BYTES >> 20} MiB; a region profile is a few KB of YAML")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif b"\x00" in data:
        raise ConfigError(f"{path}: a binary file, not a YAML region profile")
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (undecodable byte at offset {e.start}); save the profile as UTF-8") from None


def load_region(path: str | Path) -> RegionConfig:
    """Read and validate a region profile; errors name the file and the field, on one line."""
    path = Path(path)
    text = _profile_text(path)
    try:
        data = yaml.load(text, Loader=_ProfileLoader) or {}
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML: {_line(e.problem or e.context)}{where}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_line(e)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {quote(data)}")
    data.setdefault("name", path.stem)
    try:
        return validate(build(RegionConfig, data))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def region_path(name: str, root: Path | None = None) -> Path:
    root = root or Path.cwd()
    return root / "deploy" / "regions" / f"{name}.yaml"
