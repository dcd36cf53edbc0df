"""The soak's faults: what each class does to a copy of the sample site, and what the
run must end with because of it (bench/soak.py runs, bench/soak_check.py checks).

Every fault is decided up front from the seed. Each class names its target (the page,
the video file, one subtitle track, the manifest) and its truth, an :class:`Expect`:
the video ends ok with exactly its cues' clips, or it fails with one of the named
reasons. Transient faults (``times`` <= the run's ``download.retries``, counted per
video over all its transient faults) must end ok.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.sample_site.server import FAULTS as SERVER_MODES

# The run profile's download settings the truth depends on (bench/soak.py writes them).
RETRIES = 2
SOCKET_TIMEOUT_S = 2.0
PIVOT = "en"

DEADLINE_S = 20.0  # download.deadline_s: a trickling server is cut here
VIDEO_SECONDS = 10.0  # the most server delay (slow answers, timeouts) one video is given

# A subtitle track that fails for good (404, 5xx or 429 past the retries, an empty
# body...): with the downloader's per-track failures the video loses that language only
# (it is in the video's `missing_langs`). Before them (main until the `download` merge)
# yt-dlp's subtitle error failed the whole video: set this False to check that instead.
PER_TRACK_FAILURES = True
# A track in a legacy code page (cp1252) or UTF-16 with a BOM is read (no track error
# for it). Before the subtitle decoding of the `captions` merge it was dropped as
# `not_utf8` (the video kept its clips, the language was lost): set False for that.
DECODES_LEGACY_ENCODINGS = True
# A cue longer than the subtitle caps allow is dropped (since the `captions` merge): a
# track of that one cue is refused (`cue_too_long`), so on the pivot the pivot falls back
# to the next track; appended to a good track, the track keeps its other cues. Before
# the caps the pivot's made `too_many_clips`.
CAPS_CUE_LENGTH = True


@dataclass(frozen=True)
class Expect:
    """``ok``: the video ends ok with exactly its cues' clips. Else it fails, with a
    reason in ``reasons`` (an entry ending in ``_`` accepts any reason it begins)."""

    ok: bool
    reasons: tuple[str, ...] = ()

    def accepts(self, reason: str) -> bool:
        return any(reason == r or (r.endswith("_") and reason.startswith(r)) for r in self.reasons)


OK = Expect(True)


def fail(*reasons: str) -> Expect:
    return Expect(False, reasons)


@dataclass(frozen=True)
class FaultClass:
    target: str  # page | media | track | any_track | pivot | any | manifest | process
    expect: Expect  # where it hits the page or the video file, or before per-track failures
    retries_used: int = 0  # transient failures it causes at most (each takes a retry)
    loses_track: bool = False  # on a track, with PER_TRACK_FAILURES: the video is ok, that language lost
    delay_s: float = 0.0  # server delay it adds to the video's download
    server_mode: str = ""  # a faults.json kind the site's server must know
    default_on: bool = True
    doc: str = ""


def _after(reason: str) -> str:
    return f"{reason}_after_retries"


# fault class -> target and truth. `any`: page, video file or one track (chosen per fault).
CLASSES: dict[str, FaultClass] = {
    # server faults through faults.json
    "http_429": FaultClass("any", OK, 1, doc="429 for the first request of a path"),
    "http_500": FaultClass("any", OK, 1, doc="500 for the first request of a path"),
    "http_429_always": FaultClass("any", fail(_after("http_429")), loses_track=True, doc="429 on every request"),
    "http_500_always": FaultClass("any", fail(_after("http_500")), loses_track=True, doc="500 on every request"),
    "truncate": FaultClass("any", OK, 1, doc="half the body under the full Content-Length, once"),
    "truncate_always": FaultClass("any", fail(_after("truncated_body")), loses_track=True, doc="every body truncated"),
    "hangup": FaultClass("any", OK, 1, server_mode="hangup",
                         doc="the connection closed with no answer, once (a dropped kept-alive connection)"),
    "hangup_always": FaultClass("any", fail(_after("connection_error")), loses_track=True, server_mode="hangup",
                                doc="every request answered by closing the connection"),
    "slow": FaultClass("any", OK, delay_s=SOCKET_TIMEOUT_S / 3, doc="answers after a pause shorter than the socket timeout"),
    "slow_timeout": FaultClass("any", OK, 1, delay_s=SOCKET_TIMEOUT_S + 1, doc="one answer after a pause past the socket timeout"),
    "slow_always": FaultClass("any", fail(_after("timeout")), loses_track=True, delay_s=(RETRIES + 1) * SOCKET_TIMEOUT_S + 1,
                              doc="every answer past the socket timeout"),
    "redirect": FaultClass("any", OK, server_mode="redirect", doc="a 302 to the same path on the same host, once"),
    "redirect_offsite": FaultClass("any", fail("host_not_allowed"), loses_track=True, server_mode="redirect",
                                   doc="a 302 to another port of 127.0.0.1 (the allow-list is host and port)"),
    # on a track too: the deadline is the video's (the downloader's choice). No delay_s:
    # the budget keeps good videos inside the deadline, and this one fails at it anyway.
    "trickle": FaultClass("any", fail("timeout"), server_mode="trickle",
                          doc="one byte per 0.5 s: only the download deadline ends it"),
    # a subtitle file removed: the page links it, the server answers 404
    "track_404": FaultClass("track", fail("http_404"), loses_track=True, doc="one non-pivot track answers 404"),
    # files of the site copy
    "corrupt_mp4": FaultClass("media", fail("corrupt_video", "no_video_stream"), doc="bytes overwritten, file cut"),
    "audio_only": FaultClass("media", fail("no_video_stream"), doc="an AAC-only mp4 in place of the video"),
    "wrong_language": FaultClass("track", OK, doc="a non-pivot track swapped with another language's"),
    "malformed_vtt": FaultClass("track", OK, doc="a non-pivot track that is not WebVTT"),
    # An empty body: before per-track failures yt-dlp's "Did not get any data blocks" was
    # taken as a truncated download of the whole video (retried, then failed).
    "empty_track": FaultClass("track", fail(_after("truncated_body")), loses_track=True,
                              doc="a non-pivot track served as an empty file"),
    # The pivot falls back to the next readable language; its cues are the same cues shifted
    # by at most 250 ms, so the video still yields one clip per cue.
    "malformed_pivot": FaultClass("pivot", OK, doc="the English track is not WebVTT"),
    "huge_cue": FaultClass("track", OK, doc="a non-pivot track with one cue 00:00 --> 99999:59:59.999 appended"),
    "huge_cue_pivot": FaultClass("pivot", fail("too_many_clips"),
                                 doc="the English track is one cue 00:00 --> 99999:59:59.999"),
    "cp1252_track": FaultClass("track", OK, doc="a de/fr/es track re-encoded as cp1252"),
    "utf16_track": FaultClass("any_track", OK, doc="a track (English too) re-encoded as UTF-16 with a BOM"),
    # manifest rows
    "missing_page": FaultClass("manifest", fail("http_404"), doc="a row whose page does not exist"),
    "duplicate_row": FaultClass("manifest", OK, doc="a second row for a video (rejected; the first counts)"),
    "malformed_row": FaultClass("manifest", OK, doc="a row the planner must reject with its reason"),
    # processes (bench/soak.py)
    "kill_driver": FaultClass("process", OK, doc="SIGKILL the driver at a random moment, rerun until done"),
    "kill_worker": FaultClass("process", OK, doc="SIGKILL one Ray worker of the driver's at a random moment"),
}
VIDEO_CLASSES = [n for n, c in CLASSES.items() if c.target not in ("manifest", "process")]
SERVER_KINDS = {
    "http_429": "429", "http_500": "500", "http_429_always": "429", "http_500_always": "500",
    "truncate": "truncate", "truncate_always": "truncate", "hangup": "hangup", "hangup_always": "hangup",
    "slow": "slow", "slow_timeout": "slow",
    "slow_always": "slow", "redirect": "redirect", "redirect_offsite": "redirect", "trickle": "trickle",
}

# (row text, reason the planner must give it)
MALFORMED_ROWS = (
    (",", "empty_row"),
    ("bad-scheme-{n},file:///etc/passwd", "unsupported_url_scheme"),
    ("bad-scheme2-{n},ftp://127.0.0.1/x.mp4", "unsupported_url_scheme"),
    ("bad-host-{n},http://[::1/x.html", "malformed_url"),
    ("bad-port-{n},http://127.0.0.1:99999/x.html", "malformed_url"),
    ("bad-ctl-{n}\x01,v/sample-00.html", "control_characters"),
    ("{long},v/sample-00.html", "id_too_long"),
)


def server_supports(name: str) -> bool:
    mode = CLASSES[name].server_mode
    return not mode or mode in SERVER_MODES


def default_classes() -> list[str]:
    return [n for n, c in CLASSES.items() if c.default_on and server_supports(n)]


@dataclass
class RunTruth:
    """What one run must end with."""

    expect: dict[str, Expect] = field(default_factory=dict)  # video id -> outcome
    cues: dict[str, int] = field(default_factory=dict)  # video id -> clips a good video yields
    read_tracks: dict[str, list[str]] = field(default_factory=dict)  # video id -> langs that must parse
    lost_tracks: dict[str, list[str]] = field(default_factory=dict)  # video id -> langs it must miss
    rejected: list[str] = field(default_factory=list)  # reasons of the manifest rows to reject, in line order
    faults: list[tuple[str, str]] = field(default_factory=list)  # (class, where)

    @classmethod
    def from_json(cls, doc: dict) -> RunTruth:
        return cls(expect={k: Expect(ok, tuple(r)) for k, (ok, r) in doc["expect"].items()}, cues=doc["cues"],
                   read_tracks=doc["read_tracks"], lost_tracks=doc["lost_tracks"], rejected=doc["rejected"], faults=[tuple(f) for f in doc["faults"]])

    def to_json(self) -> dict:
        return {"expect": {k: [v.ok, list(v.reasons)] for k, v in self.expect.items()}, "cues": self.cues,
                "read_tracks": self.read_tracks, "lost_tracks": self.lost_tracks, "rejected": self.rejected, "faults": self.faults}


def audio_only_mp4(path: Path, seconds: float = 8.0) -> Path:
    """An mp4 holding only an AAC tone (made once per soak)."""
    if not path.exists():
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-b:a", "32k", str(path)], check=True)
    return path


class SiteFaults:
    """Plans and applies one run's faults on ``site``, a fresh copy of the base site."""

    def __init__(self, site: Path, rng: random.Random, classes: list[str], audio_mp4: Path, offsite_base: str = ""):
        self.site, self.rng, self.classes = site, rng, classes
        self.audio_mp4 = audio_mp4
        self.offsite_base = offsite_base  # another server of the same site, for redirect_offsite
        self.site_truth = json.loads((site / "truth.json").read_text(encoding="utf-8"))
        self.server: dict[str, dict] = {}
        self.touched: set[str] = set()  # files replaced or paths given a server fault
        self.track_faults: dict[str, set[str]] = {}  # video id -> classes of its track-file faults
        self.truth = RunTruth()
        with open(site / "manifest.csv", newline="", encoding="utf-8") as f:
            self.rows = [r for r in csv.DictReader(f)]
        for vid, t in self.site_truth.items():
            self.truth.expect[vid] = OK
            self.truth.cues[vid] = len(t["cues"])

    # -- planning --------------------------------------------------------------------------

    def plan(self, n_video_faults: int, n_manifest_faults: int) -> RunTruth:
        video_classes = [c for c in self.classes if c in VIDEO_CLASSES]
        manifest_classes = [c for c in self.classes if CLASSES[c].target == "manifest"]
        self.budget = {vid: RETRIES for vid in self.site_truth}  # transient failures each video may still take
        self.delay = {vid: VIDEO_SECONDS for vid in self.site_truth}  # server delay each video may still take
        tries = placed = 0
        # faults a video survives come three times as often as fatal ones: most videos of
        # a run must still end ok, with all their clips
        weights = [3 if CLASSES[c].expect.ok or CLASSES[c].loses_track else 1 for c in video_classes]
        while video_classes and placed < n_video_faults and tries < n_video_faults * 20:
            tries += 1
            name = self.rng.choices(video_classes, weights)[0]
            vid = self.rng.choice(sorted(self.site_truth))
            fc = CLASSES[name]
            if fc.retries_used > self.budget[vid] or fc.delay_s > self.delay[vid]:
                continue
            if self._inject(name, vid):
                self.budget[vid] -= fc.retries_used
                self.delay[vid] -= fc.delay_s
                placed += 1
        extra: list[tuple[str, str]] = []  # manifest lines to append
        for _ in range(n_manifest_faults if manifest_classes else 0):
            name = self.rng.choices(manifest_classes, [1 if c == "missing_page" else 2 for c in manifest_classes])[0]
            extra.append(self._manifest_row(name, len(extra)))
        self._finish(extra)
        return self.truth

    def _finish(self, extra: list[tuple[str, str]]) -> None:
        if self.server:
            (self.site / "faults.json").write_text(json.dumps(self.server, indent=1), encoding="utf-8")
        if extra:
            with open(self.site / "manifest.csv", "a", encoding="utf-8", newline="") as f:
                for line, _ in extra:
                    f.write(line + "\n")
        # a failing video's accepted reasons: its own fatal fault's and, as the last error
        # of its final attempt may come from any of them, its transient faults' too
        for vid, exp in list(self.truth.expect.items()):
            if not exp.ok:
                transient = {_after(r) for c, where in self.truth.faults if where.startswith(vid + ":")
                             for r in _transient_reasons(c)}
                self.truth.expect[vid] = Expect(False, tuple(sorted(set(exp.reasons) | transient)))

    def outcome(self, name: str, path: str) -> tuple[Expect, bool]:
        """(what the video ends with, whether it loses the track) for fault ``name`` on ``path``."""
        fc = CLASSES[name]
        if path.startswith("/subs/") and fc.loses_track and PER_TRACK_FAILURES:
            return OK, True
        if name == "huge_cue_pivot" and CAPS_CUE_LENGTH:
            return OK, True
        return fc.expect, False

    def _fatal(self, vid: str) -> bool:
        return not self.truth.expect[vid].ok

    def _record(self, name: str, vid: str, path: str) -> None:
        exp, lost = self.outcome(name, path)
        self.truth.faults.append((name, f"{vid}:{path}"))
        if lost:
            self.truth.lost_tracks.setdefault(vid, []).append(path.rsplit(".", 2)[-2])
        if not exp.ok:
            self.truth.expect[vid] = exp

    # -- per video -------------------------------------------------------------------------

    def _langs(self, vid: str) -> list[str]:
        return list(self.site_truth[vid]["langs"])

    def _track_path(self, vid: str, lang: str) -> str:
        return f"/subs/{vid}.{lang}.vtt"

    def _pick_track(self, vid: str, pivot_ok: bool, only: tuple[str, ...] = ()) -> str | None:
        langs = [lang for lang in self._langs(vid) if (pivot_ok or lang != PIVOT) and (not only or lang in only)]
        langs = [lang for lang in langs if self._track_path(vid, lang) not in self.touched]
        return self.rng.choice(langs) if langs else None

    def _inject(self, name: str, vid: str) -> bool:
        """Place fault ``name`` on video ``vid``; False where it does not fit: the path is
        taken, or it would be the video's second fatal fault (one reason to expect)."""
        fc = CLASSES[name]
        if name in SERVER_KINDS:
            paths = [f"/v/{vid}.html", f"/media/{vid}.mp4", *(self._track_path(vid, lang) for lang in self._langs(vid))]
            # a track lost for good is never the pivot's: its fallback would take another
            # track's faults as the pivot's
            paths = [p for p in paths if p not in self.touched
                     and not (p == self._track_path(vid, PIVOT) and not fc.expect.ok)
                     and not (self._fatal(vid) and not self.outcome(name, p)[0].ok)]
            if not paths:
                return False
            path = self.rng.choice(paths)
            self.server[path] = self._server_fault(name, path)
            self.touched.add(path)
            self._record(name, vid, path)
            return True
        if self._fatal(vid) and not self.outcome(name, "/subs/" if fc.target in ("track", "pivot") else "")[0].ok:
            return False
        if fc.target == "media":
            path = f"/media/{vid}.mp4"
            if path in self.touched:
                return False
            media = self.site / path.lstrip("/")
            if name == "corrupt_mp4":
                data = bytearray(media.read_bytes())
                cut = len(data) // 3
                data[64:cut] = self.rng.randbytes(cut - 64)  # the container header kept, the rest destroyed
                media.write_bytes(bytes(data[:cut]))
            else:
                shutil.copyfile(self.audio_mp4, media)
            self.touched.add(path)
            self._record(name, vid, path)
            return True
        if name == "cp1252_track":
            lang = self._pick_track(vid, False, ("de", "fr", "es"))
        elif fc.target == "any_track":
            lang = self._pick_track(vid, True)
        elif fc.target == "pivot":
            lang = PIVOT if PIVOT in self._langs(vid) and self._track_path(vid, PIVOT) not in self.touched else None
        else:
            lang = self._pick_track(vid, False)
        if lang is None:
            return False
        # The pivot falls back to another track when English is unreadable: that video
        # gets no other track-file fault, so the fallback's cues are the site's own.
        mine = self.track_faults.setdefault(vid, set())
        unreadable_pivot = fc.target == "pivot" or (name == "utf16_track" and lang == PIVOT and not DECODES_LEGACY_ENCODINGS)
        if (unreadable_pivot and mine) or "pivot" in mine:
            return False
        path = self._track_path(vid, lang)
        file = self.site / path.lstrip("/")
        if name == "track_404":
            file.unlink()
        elif name == "wrong_language":
            other = self.rng.choice([x for x in ("de", "fr", "ru", "es", "zh", "vi") if x != lang])
            source = self.site / "subs" / f"{vid}.{other}.vtt"
            if not source.exists():
                return False
            shutil.copyfile(source, file)
        elif name in ("malformed_vtt", "malformed_pivot"):
            file.write_bytes(self.rng.choice([
                b"NOT A WEBVTT FILE\n\n00:00:01.000 --> 00:00:02.000\nhello\n",
                b"WEBVTT\n\n00:00:xx.000 --> yesterday\nhello\n\n-->\n-->\n",
                self.rng.randbytes(300),
            ]))
        elif name == "empty_track":
            file.write_bytes(b"")
        elif name in ("huge_cue", "huge_cue_pivot"):
            huge = "00:00:00.000 --> 99999:59:59.999\nthis cue claims to last eleven years\n"
            if name == "huge_cue":
                file.write_text(file.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + huge, encoding="utf-8")
            else:
                file.write_text("WEBVTT\n\n" + huge, encoding="utf-8")
        elif name == "cp1252_track":
            text = file.read_text(encoding="utf-8")
            try:
                file.write_bytes(text.encode("cp1252"))
            except UnicodeEncodeError:
                return False
        elif name == "utf16_track":
            file.write_bytes(file.read_text(encoding="utf-8").encode("utf-16"))
        else:  # pragma: no cover - a class without an injector
            raise ValueError(f"no injector for {name}")
        if name in ("cp1252_track", "utf16_track") and DECODES_LEGACY_ENCODINGS:
            self.truth.read_tracks.setdefault(vid, []).append(lang)
        self.touched.add(path)
        mine.add("pivot" if unreadable_pivot else name)
        self._record(name, vid, path)
        return True

    def _server_fault(self, name: str, path: str) -> dict:
        kind = SERVER_KINDS[name]
        if name in ("http_429", "http_500"):
            return {"kind": kind, "times": 1}
        if name in ("truncate", "hangup"):
            return {"kind": kind, "times": 1}
        if name == "slow":
            return {"kind": kind, "seconds": round(self.rng.uniform(0.1, SOCKET_TIMEOUT_S / 3), 2)}
        if name == "slow_timeout":
            return {"kind": kind, "seconds": SOCKET_TIMEOUT_S + 1.0, "times": 1}
        if name == "slow_always":
            return {"kind": kind, "seconds": SOCKET_TIMEOUT_S + 1.0}
        if name == "redirect":
            return {"kind": kind, "to": f"{path}?redirected=1", "times": 1}
        if name == "redirect_offsite":
            return {"kind": kind, "to": f"{self.offsite_base.rstrip('/')}{path}"}
        if name == "trickle":
            return {"kind": kind, "interval": 0.5, "bytes": 1 << 20, "content_type": "text/html"}
        return {"kind": kind}  # the *_always faults

    # -- manifest --------------------------------------------------------------------------

    def _manifest_row(self, name: str, n: int) -> tuple[str, str]:
        tag = f"{len(self.rows) + n:03d}"
        if name == "missing_page":
            vid = f"ghost-{tag}"
            self.truth.expect[vid] = fail("http_404")
            self.truth.faults.append((name, vid))
            return f"{vid},v/{vid}.html", ""
        if name == "duplicate_row":
            row = self.rng.choice(self.rows)
            other = self.rng.choice(self.rows)
            self.truth.rejected.append("duplicate_video_id")
            self.truth.faults.append((name, row["video_id"]))
            return f"{row['video_id']},{other['url']}", "duplicate_video_id"
        text, reason = self.rng.choice(MALFORMED_ROWS)
        self.truth.rejected.append(reason)
        self.truth.faults.append((name, reason))
        return text.format(n=tag, long="x" * 300), reason


def _transient_reasons(name: str) -> tuple[str, ...]:
    return {"http_429": ("http_429",), "http_500": ("http_500",), "truncate": ("truncated_body",), "hangup": ("connection_error",),
            "slow_timeout": ("timeout",)}.get(name, ())
