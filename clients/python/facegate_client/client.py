"""FaceGate over HTTP: one method per operation of the v1 API (named after its operation id)."""

import email.utils
import json
import mimetypes
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx

from facegate_client.types import (
    AttemptKind,
    AttemptPage,
    BlacklistEntry,
    DetectResult,
    Face,
    IdentifyResult,
    Member,
    MemberBatch,
    MemberExport,
    MemberPage,
    ReviewItem,
    ReviewStatus,
    Verdict,
    VerifyResult,
)

DEFAULT_URL = "http://127.0.0.1:8000"
# A photo: its bytes, or the path of an image file.
Photo = bytes | str | os.PathLike[str]
Id = str | uuid.UUID


@dataclass(frozen=True)
class NewMember:
    """One member of signup_batch."""

    external_id: str
    display_name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    photos: Sequence[Photo] = ()
    consent_text_version: str | None = None  # the consent text the person agreed to (README: Consent)


class FaceGateAPIError(Exception):
    """The service refused a request: `code` is its machine-readable error code (README, "Errors"), `details` its
    details. An error body that is not FaceGate's (a proxy's page) gets the code `http_error`."""

    def __init__(self, status_code: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> "FaceGateAPIError":
        try:
            error = response.json()["error"]
            return cls(response.status_code, error["code"], error["message"], error.get("details"))
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, "http_error", response.text[:500] or response.reason_phrase)


def _photo_part(photo: Photo, index: int) -> tuple[str, bytes, str]:
    if isinstance(photo, bytes):
        name, data = f"photo-{index}.jpg", photo
    else:
        path = Path(photo)
        name, data = path.name, path.read_bytes()
    return name, data, mimetypes.guess_type(name)[0] or "application/octet-stream"


def _present(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as the service spells them."""
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items() if v is not None}


class FaceGate:
    """A FaceGate service. The base URL defaults to $FACEGATE_URL (else http://127.0.0.1:8000), the API key to
    $FACEGATE_API_KEY. A 503 (the service or a proxy in front of it is starting or overloaded) is retried up to
    `retries` times, after the response's Retry-After (capped at `max_retry_wait` seconds) or else an exponential
    pause. Refusals raise FaceGateAPIError with the service's error code.

    `http` lets the caller bring a configured httpx.Client (proxies, TLS, an in-process transport); it is then
    the caller's to close."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        max_retry_wait: float = 30.0,
        http: httpx.Client | None = None,
    ):
        self.base_url = (base_url or os.environ.get("FACEGATE_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("FACEGATE_API_KEY")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self._http = http or httpx.Client(timeout=timeout)
        self._owns_http = http is None

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> "FaceGate":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float:
        retry_after = response.headers.get("Retry-After")
        wait = 0.5 * 2**attempt
        if retry_after:
            try:
                wait = float(retry_after)
            except ValueError:  # the other form: an HTTP date
                when = email.utils.parsedate_to_datetime(retry_after)
                wait = (when - datetime.now(UTC)).total_seconds()
        return min(max(wait, 0.0), self.max_retry_wait)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Bodies are bytes (photos are read before the first try), so a retry sends the same request again.
        for attempt in range(self.retries + 1):
            response = self._http.request(method, f"{self.base_url}{path}", headers=self._headers, **kwargs)
            if response.status_code != 503 or attempt == self.retries:
                break
            time.sleep(self._retry_wait(response, attempt))
        if response.is_error:
            raise FaceGateAPIError.from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # health

    def ready(self) -> bool:
        """Whether the service answers and is ready (database up, models loaded); never retries or raises."""
        try:
            return self._http.get(f"{self.base_url}/health/ready").status_code == 200
        except httpx.HTTPError:
            return False

    # members

    def signup(
        self,
        external_id: str,
        display_name: str,
        *,
        metadata: dict[str, Any] | None = None,
        photos: Iterable[Photo] = (),
        largest: bool = False,
        allow_duplicate: bool = False,
        allow_mismatch: bool = False,
        consent_text_version: str | None = None,
        consent_given_at: datetime | None = None,
    ) -> Member:
        """members-create: a new member, with face photos (three good ones make the best template); all of it is
        stored, or none of it. The photos must show one person (422 face_mismatch); allow_mismatch (admin key)
        overrides that. `consent_text_version` (and when, default now) records the person's consent."""
        params = _present({"largest": largest, "allow_duplicate": allow_duplicate, "allow_mismatch": allow_mismatch})
        parts = [("file", _photo_part(p, i)) for i, p in enumerate(photos)]
        consent = _present(
            {
                "consent_text_version": consent_text_version,
                "consent_given_at": consent_given_at.isoformat() if consent_given_at else None,
            }
        )
        if not parts:
            body = {"external_id": external_id, "display_name": display_name, "metadata": metadata or {}, **consent}
            return cast(Member, self._json("POST", "/v1/members", params=params, json=body))
        form = {
            "external_id": external_id,
            "display_name": display_name,
            "metadata": json.dumps(metadata or {}),
            **consent,
        }
        return cast(Member, self._json("POST", "/v1/members", params=params, data=form, files=parts))

    def signup_batch(
        self,
        members: Iterable[NewMember],
        *,
        largest: bool = False,
        allow_duplicate: bool = False,
        allow_mismatch: bool = False,
    ) -> MemberBatch:
        """members-create-batch: up to the service's FACEGATE_MAX_BATCH_MEMBERS members in one request, each
        signed up on its own. Per member `created`, `exists` (nothing written: resending an interrupted batch is
        safe) or `error` with the code a single signup would have raised."""
        params = _present({"largest": largest, "allow_duplicate": allow_duplicate, "allow_mismatch": allow_mismatch})
        listed: list[dict[str, Any]] = []
        parts: list[tuple[str, tuple[str, bytes, str]]] = []
        for m, member in enumerate(members):
            photos = [(f"m{m}-p{p}", _photo_part(photo, p)) for p, photo in enumerate(member.photos)]
            listed.append(
                {"external_id": member.external_id, "display_name": member.display_name,
                 "metadata": member.metadata, "photos": [name for name, _ in photos],
                 **_present({"consent_text_version": member.consent_text_version})}
            )  # fmt: skip
            parts += photos
        form = {"members": json.dumps(listed)}
        return cast(MemberBatch, self._json("POST", "/v1/members/batch", params=params, data=form, files=parts))

    def get_member(self, member_id: Id) -> Member:
        return cast(Member, self._json("GET", f"/v1/members/{member_id}"))

    def list_members(self, *, offset: int = 0, limit: int = 50, external_id: str | None = None) -> MemberPage:
        params = _present({"offset": offset, "limit": limit, "external_id": external_id})
        return cast(MemberPage, self._json("GET", "/v1/members", params=params))

    def update_member(
        self,
        member_id: Id,
        *,
        external_id: str | None = None,
        display_name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Member:
        """members-update: only the fields given change."""
        fields = {"external_id": external_id, "display_name": display_name, "metadata": metadata}
        body = {k: v for k, v in fields.items() if v is not None}
        return cast(Member, self._json("PATCH", f"/v1/members/{member_id}", json=body))

    def export_member(self, member_id: Id) -> MemberExport:
        """members-export (service key): everything the service holds about the member, crops base64-encoded."""
        return cast(MemberExport, self._json("GET", f"/v1/members/{member_id}/export"))

    def delete_member(self, member_id: Id) -> None:
        """members-delete (service key): erase the member, their faces, crops, blacklist entries and attempts."""
        self._request("DELETE", f"/v1/members/{member_id}")

    # faces

    def add_face(
        self,
        member_id: Id,
        photo: Photo,
        *,
        largest: bool = False,
        allow_duplicate: bool = False,
        allow_mismatch: bool = False,
    ) -> Face:
        """faces-add: through the quality gate and the check that the face shows the member (422 face_mismatch;
        allow_mismatch, with an admin key, overrides it)."""
        params = _present({"largest": largest, "allow_duplicate": allow_duplicate, "allow_mismatch": allow_mismatch})
        files = {"file": _photo_part(photo, 0)}
        return cast(Face, self._json("POST", f"/v1/members/{member_id}/faces", params=params, files=files))

    def face_crop(self, member_id: Id, face_id: Id) -> bytes:
        """The stored 160x160 JPEG crop of an enrolled face."""
        return self._request("GET", f"/v1/members/{member_id}/faces/{face_id}/crop").content

    def set_face_enabled(self, member_id: Id, face_id: Id, enabled: bool) -> Face:
        """faces-update (admin key): a disabled face stays stored but no longer counts in the template."""
        return cast(Face, self._json("PATCH", f"/v1/members/{member_id}/faces/{face_id}", json={"enabled": enabled}))

    def delete_face(self, member_id: Id, face_id: Id) -> None:
        self._request("DELETE", f"/v1/members/{member_id}/faces/{face_id}")

    # recognition and detection

    def identify(
        self,
        photo: Photo,
        *,
        top_k: int | None = None,
        threshold: float | None = None,
        min_face_size: int | None = None,
    ) -> IdentifyResult:
        """Who is in the photo: per face a match, `decision: "review"` (nobody named, queued for a person) or
        unknown. A `threshold` replaces the calibrated decision with a fixed distance; faces smaller than
        `min_face_size` pixels are not looked for (faster on large camera frames)."""
        params = _present({"top_k": top_k, "threshold": threshold, "min_face_size": min_face_size})
        files = {"file": _photo_part(photo, 0)}
        return cast(IdentifyResult, self._json("POST", "/v1/identify", params=params, files=files))

    def verify(
        self, member_id: Id, photo: Photo, *, threshold: float | None = None, min_face_size: int | None = None
    ) -> VerifyResult:
        """Is the (largest) face in the photo this member?"""
        params = _present({"threshold": threshold, "min_face_size": min_face_size})
        files = {"file": _photo_part(photo, 0)}
        data = {"member_id": str(member_id)}
        return cast(VerifyResult, self._json("POST", "/v1/verify", params=params, data=data, files=files))

    def detect(self, photo: Photo, *, min_face_size: int | None = None) -> DetectResult:
        """Faces, landmarks and apparent expression; nothing is stored."""
        params = _present({"min_face_size": min_face_size})
        files = {"file": _photo_part(photo, 0)}
        return cast(DetectResult, self._json("POST", "/v1/detect", params=params, files=files))

    # review (admin key)

    def review_queue(
        self,
        *,
        status: ReviewStatus | None = None,
        kind: AttemptKind | None = None,
        needs_review: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> AttemptPage:
        params = _present(
            {
                "status": status,
                "kind": kind,
                "needs_review": needs_review,
                "since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None,
                "offset": offset,
                "limit": limit,
            }
        )
        return cast(AttemptPage, self._json("GET", "/v1/review/attempts", params=params))

    def review_item(self, attempt_id: Id) -> ReviewItem:
        return cast(ReviewItem, self._json("GET", f"/v1/review/attempts/{attempt_id}"))

    def give_verdict(
        self,
        attempt_id: Id,
        verdict: Verdict,
        *,
        note: str | None = None,
        member_id: Id | None = None,
        enroll: bool = False,
    ) -> ReviewItem:
        """review-verdict: correct, false_match (blacklists the pair) or false_non_match (naming `member_id`);
        `enroll` adds the probe to that member's faces."""
        body = {"verdict": verdict, "note": note, "member_id": str(member_id) if member_id else None, "enroll": enroll}
        return cast(ReviewItem, self._json("POST", f"/v1/review/attempts/{attempt_id}/verdict", json=body))

    def blacklist(self, *, member_id: Id | None = None) -> list[BlacklistEntry]:
        return cast(list[BlacklistEntry], self._json("GET", "/v1/blacklist", params=_present({"member_id": member_id})))

    def remove_blacklist_entry(self, entry_id: Id) -> None:
        """Undo a false_match: the pair may match again and its attempt goes back to pending."""
        self._request("DELETE", f"/v1/blacklist/{entry_id}")
