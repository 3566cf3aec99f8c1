"""Live identify over a WebSocket: /v1/identify/stream for any client with an API key (Authorization or X-API-Key
header on the handshake), and the desk page's /desk/stream (api.pages.desk), which serve_stream serves alike.

Each binary message is one frame (JPEG or PNG bytes); each answer is a StreamFrameOut as JSON text. Frames that
arrive while one is being identified replace each other: the newest is answered next, so a client that sends at
camera rate sees the current picture, not a growing queue. Each connection follows its faces into tracks
(services.identity.streams): one decision and one recorded attempt per person passing.

The key (or the desk's sign-in) is checked again before every frame: once it is revoked or signed out, the
stream is closed with code 4000 + the HTTP status the handshake would now get (4401), the error code as reason,
and nothing more is identified or recorded."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from api.deps import MIN_FACE_SIZE_DOC, caller_with_key, check_role, checked_min_face_size
from api.errors import error_response
from api.schemas import ErrorOut, StreamFaceOut, StreamFrameOut
from core.enums import Role
from core.errors import FaceGateError, PayloadTooLargeError
from core.settings import get_settings
from db.models import ApiKey
from db.session import session_scope
from services.identity import streams
from services.identity.tracking import FaceTracker

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["recognition"])


@dataclass(frozen=True)
class Frame:
    number: int
    data: bytes | None  # None: a text message, which is not a frame


def header_key(websocket: WebSocket) -> ApiKey:
    """A key from the handshake's headers, as get_caller reads them from a request (any role may identify)."""
    scheme, bearer = get_authorization_scheme_param(websocket.headers.get("authorization"))
    key = caller_with_key(bearer if scheme.lower() == "bearer" else websocket.headers.get("x-api-key"))
    check_role(key, Role.IDENTIFY)
    return key


@router.websocket("/identify/stream")
async def identify_stream(
    websocket: WebSocket,
    camera: Annotated[str, Query(max_length=100, description="Names the camera (in the logs)")] = "",
    min_face_size: Annotated[int | None, Query(description=MIN_FACE_SIZE_DOC)] = None,
) -> None:
    await serve_stream(websocket, lambda: header_key(websocket), camera, min_face_size)


async def serve_stream(
    websocket: WebSocket, authenticate: Callable[[], ApiKey], camera: str, min_face_size: int | None = None
) -> None:
    """Accept the WebSocket if `authenticate` finds its key and `min_face_size` is allowed (else answer the
    handshake with the error, as JSON), then answer frames until the client leaves."""
    try:
        await run_in_threadpool(authenticate)
        checked_min_face_size(get_settings(), min_face_size)
    except FaceGateError as exc:
        await websocket.send_denial_response(error_response(exc.status_code, exc.code, exc.message, exc.details))
        return
    await websocket.accept()
    newest: asyncio.Queue[Frame | None] = asyncio.Queue(maxsize=1)
    receiver = asyncio.create_task(_receive_frames(websocket, newest))
    tracks = streams.tracker(get_settings())  # this connection's: its frames are answered one at a time
    try:
        answered = 0
        while (frame := await newest.get()) is not None:
            reply = await run_in_threadpool(
                _identify_frame, websocket, authenticate, camera, min_face_size, tracks, frame,
                frame.number - answered - 1,
            )  # fmt: skip
            answered = frame.number
            await websocket.send_text(reply.model_dump_json())
    except WebSocketDisconnect:
        pass
    except FaceGateError as exc:  # from authenticate: revoked or signed out since the last frame
        await websocket.close(code=4000 + exc.status_code, reason=exc.code)
    finally:
        receiver.cancel()


async def _receive_frames(websocket: WebSocket, newest: "asyncio.Queue[Frame | None]") -> None:
    """Keep only the newest unanswered frame waiting; None once the client has gone."""
    number = 0
    while True:
        message = await websocket.receive()
        item = None
        if message["type"] == "websocket.receive":
            number += 1
            item = Frame(number, message.get("bytes"))
        if newest.full():
            newest.get_nowait()
        newest.put_nowait(item)
        if item is None:
            return


def _identify_frame(
    websocket: WebSocket,
    authenticate: Callable[[], ApiKey],
    camera: str,
    min_face_size: int | None,
    tracks: FaceTracker,
    frame: Frame,
    dropped: int,
) -> StreamFrameOut:
    """The identify path of POST /v1/identify for one frame: the key checked again (a FaceGateError out of here
    ends the stream), the pipeline's inference, then follow, search, decide and (once per track) record in one
    short transaction, committed before the answer leaves."""
    key = authenticate()
    started = time.perf_counter()
    settings = get_settings()
    state = websocket.app.state
    try:
        if frame.data is None:
            raise FaceGateError(
                "Send each frame as one binary message holding a JPEG or PNG image.", code="not_a_frame"
            )
        if len(frame.data) > settings.max_upload_bytes:
            raise PayloadTooLargeError(
                f"The frame is larger than {settings.max_upload_bytes} bytes.", max_bytes=settings.max_upload_bytes
            )
        faces = state.pipeline.analyze_photo(frame.data, min_face_size)
        with session_scope() as session:
            found, followed = streams.identify_frame(session, settings, state.gallery, tracks, key, faces)
    except FaceGateError as exc:
        error = ErrorOut.of(exc)
    except Exception:  # like a 500 over HTTP: logged, answered, and the stream goes on
        log.exception("unhandled error on frame %d from camera %r", frame.number, camera)
        error = ErrorOut(code="internal_error", message="An unexpected error occurred; it has been logged.")
    else:
        return StreamFrameOut(
            frame=frame.number,
            dropped=dropped,
            faces=[StreamFaceOut.from_track(r, t) for r, t in zip(found.faces, followed, strict=True)],
            threshold=round(found.rule.accept, 5),
            review_threshold=round(found.rule.review, 5),
            gallery_size=found.gallery_size,
            elapsed_ms=_ms_since(started),
        )
    return StreamFrameOut(frame=frame.number, dropped=dropped, error=error, elapsed_ms=_ms_since(started))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
