"""Typed items for the operator tests."""

from multihowto.schemas.item import VideoItem


def video(tmp_path, video_id: str, url: str) -> VideoItem:
    """A fresh item with its own scratch folder under ``tmp_path/work``."""
    scratch = tmp_path / "work" / video_id
    scratch.mkdir(parents=True, exist_ok=True)
    return VideoItem(video_id, url, 0, scratch=str(scratch))
