"""The one operator interface every stage implements.

An item is one video, a :class:`~multihowto.schemas.item.VideoItem`. A failed item
carries a :class:`~multihowto.schemas.item.Failure` (stage, reason, detail).
``process_batch`` passes failed items through untouched and turns an exception from
``process`` into a recorded failure, so one bad video never stops a run. Operators know
nothing of the executor; each is built from its own section of the config.
"""

from __future__ import annotations

import re
import time
from typing import ClassVar, Generic, TypeVar

from multihowto.schemas.item import Failure, VideoItem

C = TypeVar("C")

_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_PATH = re.compile(r"(?:/[\w.@%+-]+){2,}")


class StageError(Exception):
    """A per-item failure with a stable ``reason`` code (counted in the stats) and a
    human ``detail``."""

    def __init__(self, reason: str, detail: str = "", *, transient: bool = False):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.transient = transient


def normalise_error(text: str, limit: int = 300) -> str:
    """Strip URLs and file paths (they carry ids, hosts and sometimes credentials) and
    cap the length, so errors can be counted and logged safely."""
    text = _URL.sub("<url>", str(text)[: limit * 4])
    text = _PATH.sub("<path>", text)
    text = " ".join(text.split())
    return text[:limit]


def mark_failed(item: VideoItem, stage: str, reason: str, detail: str = "") -> VideoItem:
    item.failure = Failure(stage=stage, reason=reason, detail=normalise_error(detail) if detail else "")
    return item


class Operator(Generic[C]):
    """One stage. Built from a frozen config (cheap, picklable); ``setup`` loads heavy
    state once per process; ``process`` handles one item and returns it; ``release``
    frees what the stage consumed for good (a video file, raw tracks), failed or not."""

    name: ClassVar[str] = "operator"

    def __init__(self, config: C):
        self.config = config
        self._ready = False

    def setup(self) -> None:
        """Load models, clients and other per-process state."""

    def process(self, item: VideoItem) -> VideoItem:
        raise NotImplementedError

    def release(self, item: VideoItem) -> None:
        """Drop what no later stage needs; runs for every item, failed or not."""

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def process_one(self, item: VideoItem) -> VideoItem:
        self.ensure_setup()
        if item.ok:
            started = time.perf_counter()
            try:
                item = self.process(item)
            except StageError as e:
                mark_failed(item, self.name, e.reason, e.detail)
            except Exception as e:  # a bug or an unforeseen input: record, never crash the run
                mark_failed(item, self.name, f"internal_error_{type(e).__name__}", str(e))
            item.timings[self.name] = round(time.perf_counter() - started, 4)
        self.release(item)
        return item

    def process_batch(self, items: list[VideoItem]) -> list[VideoItem]:
        return [self.process_one(item) for item in items]

    def __call__(self, items: list[VideoItem]) -> list[VideoItem]:
        return self.process_batch(items)
