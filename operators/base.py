"""The one operator interface every stage implements.

An item is one video as a plain dict. It carries ``status`` (``ok`` or ``failed``),
``error`` (``reason: detail``) and ``failed_at`` (the stage). ``process_batch`` passes
failed items through untouched and turns an exception from ``process`` into a recorded
failure, so one bad video never stops a run. Operators know nothing of the executor.
"""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar, Generic, TypeVar

C = TypeVar("C")
Item = dict[str, Any]

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
    text = _URL.sub("<url>", str(text))
    text = _PATH.sub("<path>", text)
    text = " ".join(text.split())
    return text[:limit]


def mark_failed(item: Item, stage: str, reason: str, detail: str = "") -> Item:
    item["status"] = "failed"
    item["error"] = f"{reason}: {normalise_error(detail)}" if detail else reason
    item["failed_at"] = stage
    return item


def error_reason(item: Item) -> str:
    """The stable reason code of a failed item's error."""
    return (item.get("error") or "").split(":", 1)[0] or "unknown"


class Operator(Generic[C]):
    """One stage. Built from a frozen config (cheap, picklable); ``setup`` loads heavy
    state once per actor; ``process`` handles one item and returns it."""

    name: ClassVar[str] = "operator"
    # Item fields this stage consumes for good: removed from every item it passes on,
    # failed or not, so large payloads (a video's bytes) travel no further.
    drops: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: C):
        self.config = config
        self._ready = False

    def setup(self) -> None:
        """Load models, clients and other per-actor state."""

    def process(self, item: Item) -> Item:
        raise NotImplementedError

    def process_batch(self, items: list[Item]) -> list[Item]:
        if not self._ready:
            self.setup()
            self._ready = True
        out = []
        for item in items:
            item.setdefault("status", "ok")
            if item["status"] != "ok":
                for key in self.drops:
                    item.pop(key, None)
                out.append(item)
                continue
            started = time.perf_counter()
            try:
                item = self.process(item)
            except StageError as e:
                mark_failed(item, self.name, e.reason, e.detail)
            except Exception as e:  # a bug or an unforeseen input: record, never crash the run
                mark_failed(item, self.name, f"internal_error_{type(e).__name__}", str(e))
            item.setdefault("timings", {})[self.name] = round(time.perf_counter() - started, 4)
            for key in self.drops:
                item.pop(key, None)
            out.append(item)
        return out

    def __call__(self, items: list[Item]) -> list[Item]:
        return self.process_batch(items)
