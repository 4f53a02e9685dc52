"""The studio's web server: a Starlette app, one static page and a small JSON API.

The page (``static/``) draws with Plotly.js, served from the ``plotly`` package
installed with ``simdomain[studio]`` (nothing is fetched from the network). Every
request is checked before it reaches a handler: the Host header (against DNS
rebinding), the token (when one is set), JSON bodies only for writes, and their size.
Handlers turn bad input into messages the page shows beside the field; nothing a page
sends can crash the server.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from simdomain.errors import InputError, Problem
from simdomain.scenario.io import validate_scenario
from simdomain.studio import levers, views
from simdomain.studio.jobs import Busy, Jobs
from simdomain.studio.workspace import MAX_UPLOAD_BYTES, Workspace

MAX_BODY = MAX_UPLOAD_BYTES + 64 * 1024
MAX_REPS = 200
COOKIE = "simdomain_studio"
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'none'")
Handler = Callable[[Request], Awaitable[Response]]


def create_app(workspace: Workspace, *, token: str | None = None,
               allowed_hosts: set[str] | None = None, max_running: int = 2) -> Starlette:
    """The studio app over ``workspace``.

    Parameters
    ----------
    workspace
        The folders it may read and the one it writes.
    token
        When set, every request must carry it (``?token=`` once, then a cookie).
    allowed_hosts
        Host headers accepted (``host:port``); ``None`` accepts any (with a token).
    max_running
        Runs allowed at once.
    """
    jobs = Jobs(workspace.runs, max_running=max_running)
    api = _Api(workspace, jobs)
    routes = [
        Route("/", api.index),
        Route("/static/{name}", api.static),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/scenarios", api.scenarios),
        Route("/api/scenario", api.scenario),
        Route("/api/validate", api.validate, methods=["POST"]),
        Route("/api/upload", api.upload, methods=["POST"]),
        Route("/api/save", api.save, methods=["POST"]),
        Route("/api/jobs", api.start, methods=["POST"]),
        Route("/api/jobs/{id}", api.job),
        Route("/api/jobs/{id}/cancel", api.cancel, methods=["POST"]),
        Route("/api/runs", api.runs),
        Route("/api/runs/{id}", api.run),
        Route("/api/runs/{id}/files/{name}", api.download),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        jobs.warm_up()
        try:
            yield
        finally:
            jobs.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.jobs = jobs
    app.state.workspace = workspace
    app.add_middleware(_Guard, token=token, allowed_hosts=allowed_hosts)
    return app


class _Guard:
    """Host check, token, JSON-only writes, body size and security headers."""

    def __init__(self, app: Any, token: str | None, allowed_hosts: set[str] | None) -> None:
        self.app, self.token, self.allowed_hosts = app, token, allowed_hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope, receive)
        refusal = self._refuse(request)
        if refusal is not None:
            return await _secured(refusal)(scope, receive, send)
        if self.token and request.query_params.get("token") and request.method == "GET":
            response = RedirectResponse(request.url.path, status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return await _secured(response)(scope, receive, send)

        async def secure_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                            if k.lower().encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secure_send)

    def _refuse(self, request: Request) -> Response | None:
        host = request.headers.get("host", "")
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return _error(f"unexpected Host header {host!r}", 421)
        if self.token:
            given = (request.query_params.get("token") or request.headers.get("x-studio-token")
                     or request.cookies.get(COOKIE) or "")
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return _error("this studio needs its token: open the address printed at "
                              "start (…/?token=…)", 403)
        if request.method not in ("GET", "HEAD"):
            if request.headers.get("content-type", "").split(";")[0].strip() != \
                    "application/json":
                return _error("expected a JSON body", 415)
            origin = request.headers.get("origin")
            if origin and origin.split("://", 1)[-1] != host:
                return _error("refused a request from another site", 403)
            length = request.headers.get("content-length")
            if length is None or not length.isdigit() or int(length) > MAX_BODY:
                return _error(f"the request is larger than {MAX_BODY // 1024} KiB", 413)
        return None


SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _secured(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers[key] = value
    return response


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"problems": [{"text": message, "path": "", "source": "studio"}]},
                        status_code=status)


def _handled(handler: Handler) -> Handler:
    """Bad input -> 400 with the problems; anything else -> 500 with a message."""

    async def wrapped(self: Any, request: Request) -> Response:
        try:
            return await handler(self, request)
        except InputError as exc:
            return JSONResponse({"problems": levers.problems_json(exc)}, status_code=400)
        except Busy as exc:
            return _error(str(exc), 429)
        except Exception as exc:  # noqa: BLE001 - the server must stay up
            return _error(f"internal error: {type(exc).__name__}: {exc}", 500)

    return wrapped  # type: ignore[return-value]


class _Api:
    def __init__(self, workspace: Workspace, jobs: Jobs) -> None:
        self.ws, self.jobs = workspace, jobs

    async def index(self, request: Request) -> Response:
        return FileResponse(_static_path("index.html"), media_type="text/html")

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(_plotly_js(), media_type="text/javascript",
                                headers={"Cache-Control": "max-age=86400"})
        if name not in STATIC:
            return _error("not found", 404)
        return FileResponse(_static_path(name), media_type=STATIC[name])

    @_handled
    async def scenarios(self, request: Request) -> Response:
        return JSONResponse({"scenarios": self.ws.scenarios()})

    @_handled
    async def scenario(self, request: Request) -> Response:
        ident = request.query_params.get("id", "")
        raw, source = self.ws.read(ident)
        problems = await run_in_threadpool(levers.check, raw, source, [])
        return JSONResponse({"id": ident, "source": source, "name": raw.get("name", ""),
                             "levers": _plain(levers.levers(raw)), "problems": problems})

    @_handled
    async def validate(self, request: Request) -> Response:
        body = await _json(request)
        raw, source = self.ws.read(str(body.get("scenario", "")))
        overrides = levers.clean_overrides(body.get("overrides", []))
        problems = await run_in_threadpool(levers.check, raw, source, overrides)
        return JSONResponse({"problems": problems})

    @_handled
    async def upload(self, request: Request) -> Response:
        body = await _json(request)
        name, text = body.get("name"), body.get("text")
        if not isinstance(name, str) or not isinstance(text, str):
            raise InputError([Problem("upload", (), "expected a file name and its text")])
        ident = self.ws.upload(name, text)
        return JSONResponse({"id": ident, "scenarios": self.ws.scenarios()})

    @_handled
    async def save(self, request: Request) -> Response:
        body = await _json(request)
        raw, source = self.ws.read(str(body.get("scenario", "")))
        overrides = levers.clean_overrides(body.get("overrides", []))
        validate_scenario(raw, source, overrides)
        text, diff = levers.variant_yaml(raw, overrides)
        path = self.ws.save_variant(str(body.get("name", "")), text)
        return JSONResponse({"id": self.ws.id_of(path), "path": self.ws.display(path),
                             "diff": diff, "scenarios": self.ws.scenarios()})

    @_handled
    async def start(self, request: Request) -> Response:
        body = await _json(request)
        kind = body.get("kind")
        if kind not in ("run", "compare", "plan"):
            raise InputError([Problem("studio", ("kind",), f"unknown job {kind!r}")])
        ident = str(body.get("scenario", ""))
        raw, source = self.ws.read(ident)
        overrides = levers.clean_overrides(body.get("overrides", []))
        reps = _integer(body.get("reps", 10), "reps", 2 if kind == "compare" else 1, MAX_REPS)
        seed = _integer(body.get("seed", 0), "seed", 0, 2**31 - 1)
        variants: dict[str, list[str]] = {}
        if kind == "compare":
            given = body.get("variants")
            if not isinstance(given, dict) or not given or len(given) > 8:
                raise InputError([Problem("compare", (), "keep one to eight variants to "
                                                         "compare with the base")])
            for name, sets in given.items():
                if not isinstance(name, str) or not name.strip() or name == "base":
                    raise InputError([Problem("compare", (), f"bad variant name {name!r}")])
                variants[name[:60]] = levers.clean_overrides(sets)
            problems = [p for sets in variants.values() for p in levers.check(raw, source, sets)]
        else:
            problems = levers.check(raw, source, overrides)
        if problems:
            return JSONResponse({"problems": problems}, status_code=400)
        verify = reps if kind == "plan" and body.get("verify") is True else 0
        spec = {"source": source, "scenario": ident, "overrides": overrides,
                "variants": variants or None, "seed": seed, "reps": reps, "verify": verify}
        job = await run_in_threadpool(self.jobs.start, kind, spec, lambda folder: levers.command(
            kind, source, overrides, reps=reps, seed=seed, out=self.ws.display(folder),
            variants=variants, verify=verify))
        return JSONResponse(job.state())

    @_handled
    async def job(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["id"])
        if job is None:
            return _error("unknown run", 404)
        return JSONResponse(job.state())

    @_handled
    async def cancel(self, request: Request) -> Response:
        job = self.jobs.cancel(request.path_params["id"])
        if job is None:
            return _error("unknown run", 404)
        return JSONResponse(job.state())

    @_handled
    async def runs(self, request: Request) -> Response:
        return JSONResponse({"runs": views.past_runs(self.ws.run_folders())})

    @_handled
    async def run(self, request: Request) -> Response:
        ident = request.path_params["id"]
        shown = await run_in_threadpool(views.view, self.ws.run_folder(ident), ident)
        return JSONResponse(shown)

    @_handled
    async def download(self, request: Request) -> Response:
        folder = self.ws.run_folder(request.path_params["id"])
        name = request.path_params["name"]
        if name not in views.DOWNLOADS or not (folder / name).is_file():
            return _error("not found", 404)
        return FileResponse(folder / name, filename=name)


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InputError([Problem("studio", (), "the request is too large")])
    try:
        value = json.loads(body)
    except ValueError:
        raise InputError([Problem("studio", (), "the request is not valid JSON")]) from None
    if not isinstance(value, dict):
        raise InputError([Problem("studio", (), "expected a JSON object")])
    return value


def _integer(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
        if number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError([Problem("studio", (name,), f"expected a whole number, "
                                                     f"got {str(value)[:30]!r}")]) from None
    if not low <= number <= high:
        raise InputError([Problem("studio", (name,), f"expected {low} to {high}, got {number}")])
    return number


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _static_path(name: str) -> Path:
    return Path(str(resources.files("simdomain.studio") / "static" / name))


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
