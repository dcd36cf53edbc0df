"""``mhowto browse PATH``: a read-only web app over a built dataset (local or S3).

Views: overview (the card's figures and plots), clips (a paged, filtered grid from the
parquet indexes), clip (every frame, nine texts side by side), video (its clips on a
timeline per language, its stats entry) and failures. Starlette + Jinja2 with
autoescaping; no JavaScript at all, and a Content-Security-Policy that forbids scripts,
so an untrusted subtitle cannot run even if it slipped past escaping. Routes take clip
keys, video ids and plot names that are validated against the dataset, never paths.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import jinja2
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from multihowto.pipeline.dataset_view import ClipFilter, DatasetView, NotInDataset
from multihowto.pipeline.storage import open_storage
from multihowto.pipeline.summary import DatasetSummary, failure_of, summarise
from multihowto.schemas.sample import LANGS

ASSETS = Path(__file__).parent / "browse-assets"
PER_PAGE = 24
CARD_PLOTS = ("clips_per_lang.png", "lid_scores.png", "failures.png", "clip_lengths.png")
LOOPBACK = ("127.0.0.1", "localhost")
SECURITY_HEADERS = {
    # No scripts at all, nothing from elsewhere: the pages are plain HTML and one CSS file.
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _source_link(url: str) -> str:
    """A source URL fit for an ``href``: http(s) only (a ``javascript:`` URL stays text)."""
    return url if url.startswith(("http://", "https://")) else ""


class BrowseApp:
    """The routes over one :class:`DatasetView`."""

    def __init__(self, view: DatasetView):
        self.view = view
        self._summary: DatasetSummary | None = None
        self._summary_lock = threading.Lock()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(ASSETS / "templates"),
            autoescape=True,  # every text is untrusted input: always escaped
            undefined=jinja2.StrictUndefined,
        )
        self.env.globals.update(langs=LANGS, dataset=view.uri, source_link=_source_link)

    def summary(self) -> DatasetSummary:
        """The one computed summary the card and ``mhowto inspect`` render too (once per process)."""
        with self._summary_lock:
            if self._summary is None:
                self._summary = summarise(self.view.storage)
            return self._summary

    def render(self, template: str, status_code: int = 200, **context) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    # -- views -------------------------------------------------------------------
    def overview(self, request: Request) -> Response:
        s = self.summary()
        return self.render("overview.html", s=s, plots=self.view.plots(CARD_PLOTS), title="Overview")

    def clips(self, request: Request) -> Response:
        q = request.query_params
        try:
            flt = ClipFilter(**{k: q.get(k, "").strip() for k in ("has", "missing", "uncertain", "video", "q")})
            page = max(1, int(q.get("page", "1")))
        except ValueError as e:
            raise HTTPException(400, str(e)) from e
        try:
            rows, more = self.view.page(flt, page, PER_PAGE)
        except NotInDataset as e:
            raise HTTPException(404, str(e)) from e
        params = {k: v for k, v in vars(flt).items() if v}

        def page_link(n: int) -> str:
            return "/clips?" + urlencode({**params, "page": n})

        return self.render(
            "clips.html", rows=rows, flt=flt, page=page, title="Clips",
            prev_link=page_link(page - 1) if page > 1 else "", next_link=page_link(page + 1) if more else "",
        )

    def clip(self, request: Request) -> Response:
        key = request.path_params["key"]
        clip = self._clip(key)
        siblings = [r["key"] for r in self.view.video_clips(clip.row["video_id"])]
        i = siblings.index(key)
        verdicts = self.view.video(clip.row["video_id"]).get("lid", {})
        return self.render(
            "clip.html", clip=clip, title=key, verdicts=verdicts,
            prev_key=siblings[i - 1] if i > 0 else "", next_key=siblings[i + 1] if i + 1 < len(siblings) else "",
        )

    def frame(self, request: Request) -> Response:
        clip = self._clip(request.path_params["key"])
        i = request.path_params["i"]
        if not 0 <= i < len(clip.frames):
            raise HTTPException(404, f"clip {clip.row['key']} has {len(clip.frames)} frames")
        return Response(clip.frames[i], media_type="image/jpeg", headers={**SECURITY_HEADERS, "Cache-Control": "max-age=3600"})

    def video(self, request: Request) -> Response:
        video_id = request.path_params["video_id"]
        try:
            entry = self.view.video(video_id)
        except NotInDataset as e:
            raise HTTPException(404, str(e)) from e
        rows = self.view.video_clips(video_id)
        try:  # the track kinds are in a clip's json; a damaged first clip only hides them
            first = self.view.clip(rows[0]["key"]).meta if rows else {}
        except ValueError:
            first = {}
        length = max((r["end"] for r in rows), default=0.0) or 1.0
        tracks = []
        for lang in LANGS:
            kept = [r for r in rows if lang in r["langs"]]
            tracks.append({
                "lang": lang, "kept": kept, "verdict": entry.get("lid", {}).get(lang, ""),
                "score": entry.get("lid_scores", {}).get(lang),
                "missing": entry.get("missing_langs", {}).get(lang, ""),
                "kind": first.get("source", {}).get("subtitle_kinds", {}).get(lang, ""),
            })
        stats_entry = {k: v for k, v in entry.items() if k != "shards"}
        return self.render(
            "video.html", title=video_id, video_id=video_id, entry=entry, rows=rows, tracks=tracks,
            length=length, failure=failure_of(entry) if entry.get("status") != "ok" else None,
            stats_json=json.dumps(stats_entry, ensure_ascii=False, indent=1, sort_keys=True),
        )

    def failures(self, request: Request) -> Response:
        s = self.summary()
        wanted = request.query_params.get("reason", "")
        shown = [f for f in s.failed_videos if not wanted or f.reason == wanted]
        shards = {f.video_id: self.view.videos().get(f.video_id, {}).get("shards", ["?"])[-1] for f in shown}
        return self.render("failures.html", title="Failures", failed=shown, shards=shards,
                           reasons=sorted(s.failures), wanted=wanted, rejected_rows=s.rejected_rows)

    def plot(self, request: Request) -> Response:
        try:
            png = self.view.plot(request.path_params["name"])
        except NotInDataset as e:
            raise HTTPException(404, str(e)) from e
        return Response(png, media_type="image/png", headers=SECURITY_HEADERS)

    def _clip(self, key: str):
        try:
            return self.view.clip(key)
        except NotInDataset as e:
            raise HTTPException(404, str(e)) from e
        except ValueError as e:  # a damaged span: the page says which file and sample
            raise HTTPException(500, f"cannot read this clip: {e}") from e

    def error(self, request: Request, exc: HTTPException) -> Response:
        if request.url.path.endswith((".jpg", ".png")):
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=SECURITY_HEADERS)
        return self.render("error.html", status_code=exc.status_code, title=str(exc.status_code), detail=exc.detail)


def create_app(view: DatasetView, allowed_hosts: tuple[str, ...] = LOOPBACK) -> Starlette:
    """The web app over ``view``; requests whose Host is not in ``allowed_hosts`` are
    refused (a page elsewhere cannot reach the app through DNS rebinding)."""
    b = BrowseApp(view)
    routes = [
        Route("/", b.overview),
        Route("/clips", b.clips),
        Route("/clip/{key}", b.clip),
        Route("/clip/{key}/frame/{i:int}.jpg", b.frame),
        Route("/video/{video_id}", b.video),
        Route("/failures", b.failures),
        Route("/plot/{name}", b.plot),
        Mount("/static", StaticFiles(directory=ASSETS / "static"), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: b.error})


def open_view(path: str, endpoint: str = "", region: str = "") -> DatasetView:
    """A view of the dataset at a local path or ``s3://bucket/prefix``."""
    if "://" not in path and not Path(path).is_dir():
        raise FileNotFoundError(f"{path}: no such dataset folder")
    return DatasetView(open_storage(path, endpoint, region, create=False))


@contextlib.contextmanager
def running(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` in a background thread; yields its base URL (``port=0``: a free one)."""
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so; without it
    # Nagle and delayed ACKs hold each keep-alive response back by ~40 ms.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the browse server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = sock.getsockname()[1]
    try:
        yield f"http://{f'[{host}]' if ':' in host else host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(path: str, host: str = "127.0.0.1", port: int = 0, endpoint: str = "", region: str = "") -> None:
    """Serve the dataset at ``path`` until interrupted, printing the URL."""
    view = open_view(path, endpoint, region)
    allowed = LOOPBACK if host in LOOPBACK else ("*",)  # another interface: the user chose it
    with running(create_app(view, allowed), host, port) as base:
        print(f"[browse] {view.uri} at {base}/  (read-only; Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
