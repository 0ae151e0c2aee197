"""The HTTP API: OpenAI-compatible speech, health, readiness, metrics, version, and the UI."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST

from service.encoding import encode
from service.engines import EngineError
from service.engines.base import synthesis_seed
from service.runtime import BadAudioError, ModelRuntime, NotReadyError, Synthesis
from service.speech_request import RequestError, RequestRules, SpeechRequest, parse_speech_request, request_schema
from service.streaming import StreamFraming
from service.worker import Job, QueueFullError, QueueTimeoutError

log = logging.getLogger("service.api")
SPEECH_PATH = "/v1/audio/speech"
QUEUE_HEADER = "X-Queue-Seconds"
STREAM_HEADER = "X-Stream-Format"  # on streamed answers only: the LB logs it, the judge's TTFA evidence
UI_PATH = "/ui"
CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection first"


class ClientGone(Exception):
    """The client disconnected while its synthesis was queued or running."""


def _route_label(path: str) -> str:
    if path == SPEECH_PATH:
        return "speech"
    if path.startswith(UI_PATH):
        return "ui"
    return path if path in ("/healthz", "/readyz", "/metrics", "/version") else "other"


def _error(status: int, message: str, kind: str, code: str, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _declared_too_large(content_length: str, limit: int) -> bool:
    """Whether a Content-Length header announces more than `limit` bytes (never int() on 5,000 digits)."""
    digits = content_length.strip()
    if not (digits.isascii() and digits.isdigit()):
        return False  # no length, or not one: the body read is capped anyway
    return len(digits.lstrip("0")) > len(str(limit)) or int(digits) > limit


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, but never more than limit + 1 bytes of it (chunked uploads have no length)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            break
    return bytes(body)


def _count_requests(app: FastAPI, runtime: ModelRuntime) -> None:
    metrics, version = runtime.metrics, runtime.manifest.version
    node = runtime.settings.node_name or socket.gethostname()

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        route = _route_label(request.url.path)
        speech = route == "speech"
        started = time.perf_counter()
        if speech:
            metrics.in_flight.inc()
        try:
            response = await call_next(request)
        except Exception:  # a bug, never a client's input: still a JSON answer, labelled and counted
            log.exception("unhandled error on %s %s (model %s)", request.method, request.url.path, version)
            response = _error(500, "internal server error", "server_error", "internal_error")
        response.headers["X-Model-Version"] = version  # the LB logs it per attempt
        response.headers["X-Served-By"] = node  # which host answered, when a user complains

        def counted() -> None:
            # A streamed answer that failed after its first audio left is a server error, though its status said 200.
            status = 500 if getattr(request.state, "stream_failed", False) else response.status_code
            metrics.requests.labels(route, str(status)).inc()
            if speech:
                metrics.in_flight.dec()
                elapsed, outcome = time.perf_counter() - started, f"{status // 100}xx"
                metrics.latency.labels(route, outcome).observe(elapsed)
                metrics.service.labels(route, outcome).observe(
                    max(0.0, elapsed - getattr(request.state, "queue_wait_s", 0.0)))

        body: AsyncIterator[Any] | None = getattr(response, "body_iterator", None)
        if body is None or not speech:
            counted()
            return response

        async def counted_at_its_end() -> AsyncIterator[Any]:  # a streamed answer takes its time
            try:
                async for part in body:
                    yield part
            finally:
                counted()

        response.body_iterator = counted_at_its_end()  # type: ignore[attr-defined]
        return response


def _operations_routes(app: FastAPI, runtime: ModelRuntime) -> None:
    """/healthz, /readyz, /version, /metrics: what the fleet's tooling asks."""
    settings, manifest = runtime.settings, runtime.manifest

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready, reason = runtime.readiness()
        body: dict[str, object] = {"ready": ready, "reason": reason, "version": manifest.version}
        if runtime.warmup_report is not None:
            body["warmup"] = runtime.warmup_report.as_dict()
        return JSONResponse(body, status_code=200 if ready else 503, headers=None if ready else {"Retry-After": "5"})

    @app.get("/version")
    async def version() -> dict[str, object]:
        return {
            "name": manifest.name,
            "model_version": manifest.version,
            "model_sha256": manifest.sha256,
            "model_source": "uri" if settings.model_uri else "baked",  # MODEL_URI, or the image's own
            "engine": manifest.engine,
            "device": runtime.device,
            "sample_rate": manifest.sample_rate,
            "voices": list(manifest.voices),
            "image_tag": settings.image_tag or None,
            "git_revision": settings.git_revision or None,
            "ready_at": runtime.ready_at,
        }

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


async def _disconnect(request: Request) -> None:
    """Returns when the client disconnects (the body was read: the next ASGI message is that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _wait_for(job: Job[Synthesis], request: Request, timeout_s: float) -> Synthesis:
    """The job's result; raises TimeoutError after `timeout_s`, or ClientGone when the client
    disconnects first. Either way the job is abandoned: dropped if queued, stopped at its
    next chunk if running, so nobody's synthesis runs for a client that is gone."""
    waiter, gone = asyncio.wrap_future(job), asyncio.ensure_future(_disconnect(request))
    either: set[asyncio.Future[Any]] = {waiter, gone}
    try:
        done, _ = await asyncio.wait(either, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            return waiter.result()
        if gone in done:
            raise ClientGone
        raise TimeoutError
    finally:
        gone.cancel()
        if not job.done():
            job.abandon()
            waiter.cancel()


def _refused(runtime: ModelRuntime, exc: NotReadyError | QueueFullError) -> JSONResponse:
    if isinstance(exc, NotReadyError):
        runtime.metrics.rejected.labels("not_ready").inc()
        return _error(503, f"model not ready: {exc}", "server_error", "not_ready", retry_after=5)
    runtime.metrics.rejected.labels("queue_full").inc()
    return _error(429, str(exc), "rate_limit_error", "queue_full", retry_after=runtime.retry_after_s())


def _failure(runtime: ModelRuntime, exc: Exception) -> tuple[int, str, str, str] | None:
    """(status, message, type, code) for what ended a synthesis; None for what is a bug."""
    timeout_s, version = runtime.settings.request_timeout_s, runtime.manifest.version
    if isinstance(exc, ClientGone):
        log.info("client went away; its synthesis was dropped")
        return CLIENT_CLOSED, "client closed the request", "invalid_request_error", "client_closed"
    if isinstance(exc, TimeoutError | QueueTimeoutError):
        return 504, f"synthesis took longer than {timeout_s}s", "server_error", "timeout"
    if isinstance(exc, BadAudioError):
        log.error("bad audio from %s: %s", version, exc)
        return 500, str(exc), "server_error", "bad_audio"
    if isinstance(exc, EngineError):
        log.error("engine error on %s: %s", version, exc)
        return 500, f"synthesis failed: {exc}", "server_error", "engine_error"
    return None


async def _synthesis(runtime: ModelRuntime, req: SpeechRequest, request: Request) -> Synthesis | JSONResponse:
    """The finished synthesis, or the error response that says why there is none."""
    try:
        job = runtime.submit(req.input, req.voice, req.speed, req.seed)
    except (NotReadyError, QueueFullError) as exc:
        return _refused(runtime, exc)
    try:
        return await _wait_for(job, request, runtime.settings.request_timeout_s)
    except Exception as exc:
        failure = _failure(runtime, exc)
        if failure is None:
            raise
        return _error(*failure)


async def _next_piece(done: asyncio.Future[Synthesis], pieces: asyncio.Queue[np.ndarray], deadline: float,
                      gone: asyncio.Future[None] | None = None) -> np.ndarray | None:
    """The stream's next piece of audio; None when the synthesis ended and every piece was
    taken. Raises what ended the synthesis, TimeoutError at `deadline` (loop time), or
    ClientGone when `gone` completes first."""
    while True:
        if not pieces.empty():
            return pieces.get_nowait()
        if done.done():  # the job's pieces were queued before it finished: none is left behind
            done.result()
            return None
        taken = asyncio.ensure_future(pieces.get())
        either: set[asyncio.Future[Any]] = {taken, done}
        if gone is not None:
            either.add(gone)
        try:
            finished, _ = await asyncio.wait(either, timeout=max(0.0, deadline - asyncio.get_running_loop().time()),
                                             return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not taken.done():
                taken.cancel()
        if taken in finished:
            return taken.result()
        if gone is not None and gone in finished:
            raise ClientGone
        if not finished:
            raise TimeoutError


async def _streamed(runtime: ModelRuntime, req: SpeechRequest, request: Request, headers: dict[str, str]
                    ) -> Response:
    """A streamed answer: its status and headers leave with the first sentence's audio, so
    what fails before that (queue full, timeout, bad audio) is still an honest status."""
    loop, pieces = asyncio.get_running_loop(), asyncio.Queue[np.ndarray]()
    started, deadline = time.perf_counter(), loop.time() + runtime.settings.request_timeout_s

    def sink(audio: np.ndarray) -> None:  # on the inference thread
        loop.call_soon_threadsafe(pieces.put_nowait, audio)

    try:
        job = runtime.submit(req.input, req.voice, req.speed, req.seed, sink=sink)
    except (NotReadyError, QueueFullError) as exc:
        return _refused(runtime, exc)
    done, gone = asyncio.wrap_future(job), asyncio.ensure_future(_disconnect(request))
    try:
        first = await _next_piece(done, pieces, deadline, gone)
    except Exception as exc:
        job.abandon()
        failure = _failure(runtime, exc)
        if failure is None:
            raise
        return _error(*failure)
    finally:
        gone.cancel()
    assert first is not None  # a synthesis that ended well made at least one piece
    first_audio_s = time.perf_counter() - started
    runtime.metrics.first_audio.observe(first_audio_s)
    runtime.metrics.first_audio_service.observe(max(0.0, first_audio_s - job.queue_wait_s))
    request.state.queue_wait_s = job.queue_wait_s
    framing = StreamFraming(req.response_format, req.stream_format or "audio", runtime.manifest.sample_rate)
    headers |= {QUEUE_HEADER: f"{job.queue_wait_s:.3f}", STREAM_HEADER: framing.stream_format,
                "X-First-Audio-Seconds": f"{first_audio_s:.3f}",
                "X-Accel-Buffering": "no"}  # nginx passes each piece on as it comes

    async def body() -> AsyncIterator[bytes]:
        try:
            yield framing.opening(first)
            while (piece := await _next_piece(done, pieces, deadline)) is not None:
                yield framing.piece(piece)
            yield framing.closing(len(req.input))
        except Exception as exc:
            failure = _failure(runtime, exc)
            if failure is None:
                raise
            request.state.stream_failed = True
            log.error("a streamed answer failed after its first audio: %s", failure[1])
            cut = framing.failure(failure[1], failure[3])
            if cut is None:
                raise  # raw audio: the connection ends without its last chunk
            yield cut
        finally:
            job.abandon()  # a no-op when it is done; the client left or it failed: no more chunks for nobody

    return StreamingResponse(body(), media_type=framing.media_type, headers=headers)


def _speech_route(app: FastAPI, runtime: ModelRuntime) -> None:
    settings, manifest, metrics = runtime.settings, runtime.manifest, runtime.metrics
    rules = RequestRules(
        models=(manifest.name, *settings.model_aliases),
        voices=manifest.voices,
        max_input_chars=settings.max_input_chars,
        max_body_bytes=settings.max_body_bytes,
        text_support=runtime.engine.text_support(),
        chunk_chars=settings.chunk_chars,
        estimate_audio_s=runtime.engine.estimate_audio_s,
        max_audio_s=settings.max_audio_s,
    )

    body_schema = {"required": True, "content": {"application/json": {"schema": request_schema(rules)}}}

    @app.get("/v1/voices")
    async def voices() -> dict[str, object]:
        """The model's voices, the first its default (what a request without `voice` gets)."""
        return {"object": "list", "model": manifest.name, "model_version": manifest.version,
                "data": [{"id": v, "object": "voice", "default": i == 0} for i, v in enumerate(manifest.voices)]}

    @app.post(SPEECH_PATH, openapi_extra={"requestBody": body_schema})
    async def speech(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if _declared_too_large(declared, settings.max_body_bytes):  # refuse before reading it
            metrics.rejected.labels("invalid").inc()
            return JSONResponse(RequestError(413, f"request body is {declared} bytes, the limit is "
                                             f"{settings.max_body_bytes}", "body", "body_too_large").body(),
                                status_code=413)
        body = await _read_capped(request, settings.max_body_bytes)
        try:
            req = parse_speech_request(body, request.headers.get("content-type"), rules)
        except RequestError as exc:
            metrics.rejected.labels("invalid").inc()
            return JSONResponse(exc.body(), status_code=exc.status)
        if req.seed is None:  # known before synthesis, so a streamed answer's headers carry it too
            req = replace(req, seed=synthesis_seed(req.input, req.voice, req.speed))
        headers = {"X-Model-Sha256": manifest.sha256, "X-Seed": str(req.seed)}  # send it back as `seed`: the same audio
        if request_id := request.headers.get("x-request-id"):
            headers["X-Request-Id"] = request_id
        if req.streamed:
            return await _streamed(runtime, req, request, headers | {"X-Sample-Rate": str(manifest.sample_rate)})
        result = await _synthesis(runtime, req, request)
        if isinstance(result, JSONResponse):
            return result
        audio, media_type, rate = await asyncio.to_thread(encode, result.audio, result.sample_rate,
                                                          req.response_format)
        headers |= {
            "X-Sample-Rate": str(rate),
            "X-Audio-Duration": f"{result.duration_s:.3f}",
            "X-Synthesis-Seconds": f"{result.synth_seconds:.3f}",
            # the LB logs it: the judge compares time in service (the version's own cost),
            # not time spent queued behind other requests (the host's load)
            QUEUE_HEADER: f"{result.queue_wait_s:.3f}",
        }
        request.state.queue_wait_s = result.queue_wait_s  # for the time-in-service histogram
        return Response(audio, media_type=media_type, headers=headers)


def create_app(runtime: ModelRuntime, with_ui: bool = True) -> FastAPI:
    """The service's app; `app.state.ui`: the web UI (service.ui.UiOnFirstVisit), or None."""
    ui = None
    if with_ui:
        from service.ui import UiOnFirstVisit, UiRoutes

        ui = UiOnFirstVisit(runtime, UI_PATH)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        yield
        if ui is not None:
            await ui.close()
        runtime.stop()

    app = FastAPI(title="voxfleet TTS", version=runtime.manifest.version, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.ui = ui
    if ui is not None:  # added first, so inside the request counting below: UI requests are counted too
        app.add_middleware(UiRoutes, ui=ui)
    _count_requests(app, runtime)
    _operations_routes(app, runtime)
    _speech_route(app, runtime)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PATH}/" if with_ui else "/docs")

    return app
