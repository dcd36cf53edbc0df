"""Manifest rows as the reader yields them (pipeline/manifest.py) and the planner keeps them."""

from __future__ import annotations

from typing import NamedTuple


class ManifestRow(NamedTuple):
    line: int
    video_id: str
    url: str


class RejectedRow(NamedTuple):
    line: int
    reason: str
    value: str
