"""The records in flight: one work unit's task, and one video as it goes through the stages.

A :class:`VideoItem` is created by the unit runner for each row of its unit and handed
from operator to operator inside one worker process; only the unit's stats leave that
process. Each stage fills its own fields (the comments say which). A failure is a
:class:`Failure` with its stage, stable reason code and human detail as separate fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multihowto.schemas.download import RawTrack


@dataclass(frozen=True)
class UnitTask:
    """One work unit: rows ``[start, stop)`` of the plan file ``plan_file`` (a parquet in
    the dataset's storage, sorted by unit), all of them in unit ``unit``."""

    unit: int
    plan_file: str
    start: int
    stop: int


@dataclass(frozen=True)
class Failure:
    stage: str
    reason: str  # stable code, counted in the stats (``http_404``, ``corrupt_video``, ...)
    detail: str = ""  # normalised human text (no URLs or paths)

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


@dataclass
class Track:
    """One language's cleaned cue list."""

    cues: list[tuple[float, float, str]]
    format: str
    kind: str  # manual | asr | asr-rolling
    tag: str = ""
    encoding: str = "utf-8"
    repairs: int = 0  # cues whose double encoding was repaired
    dropped_cues: dict[str, int] = field(default_factory=dict)  # reason -> cues dropped
    cue_lid: list[str] = field(default_factory=list)  # fastText's top label per cue


@dataclass
class Clip:
    index: int
    start: float
    end: float
    texts: dict[str, str]  # lang -> text
    confidence: dict[str, float]  # lang -> alignment confidence
    frames_path: str = ""  # the packed frames.npz, in the unit's scratch folder
    n_frames: int = 0
    features: bytes | None = None  # features.npy, when the features stage runs


@dataclass
class VideoItem:
    video_id: str
    url: str
    unit: int
    failure: Failure | None = None
    scratch: str = ""  # this video's folder in the unit's scratch space (removed after the unit)
    # download
    video_path: str = ""
    raw_tracks: dict[str, RawTrack] = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # title, duration, extractor
    download_attempts: int = 0
    retried: list[str] = field(default_factory=list)  # one reason per retry made
    requests: int = 0
    warnings: int = 0
    # subtitles
    tracks: dict[str, Track] = field(default_factory=dict)
    track_errors: dict[str, str] = field(default_factory=dict)  # lang -> reason
    # langid
    lid: dict[str, dict] = field(default_factory=dict)  # lang -> verdict, label, score, ...
    lid_rejected: dict[str, str] = field(default_factory=dict)  # lang -> reason
    # align
    pivot: str = ""
    clips: list[Clip] = field(default_factory=list)
    missing_langs: dict[str, str] = field(default_factory=dict)  # lang -> reason
    # frames
    n_frames: int = 0
    clips_dropped: dict[str, int] = field(default_factory=dict)  # reason -> clips
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def status(self) -> str:
        return "ok" if self.failure is None else "failed"

    @property
    def scratch_dir(self) -> Path:
        return Path(self.scratch)
