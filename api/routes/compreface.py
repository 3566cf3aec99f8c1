"""CompreFace's REST API v1 (recognition, face collection, subjects, detection, verification) on FaceGate's
members, faces, identify, verify and detect, for clients written for CompreFace (Double Take, Viseron, the
CompreFace SDKs). The key travels in `x-api-key`; errors are CompreFace's {"message", "code"} (api/compat.py);
the similarity is services.identity.compat's map of FaceGate's calibrated score."""

import math
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api import compat_schemas as cf
from api.compat import CompreFaceRoute, compreface_images
from api.deps import (
    GalleryDep,
    IdentifyCaller,
    PipelineDep,
    ServiceCaller,
    SessionDep,
    SettingsDep,
    require_role,
)
from core.enums import Role
from core.errors import FaceGateError, NotFoundError
from services.faces.pipeline import AnalyzedFace
from services.identity import compat, members, recognition

router = APIRouter(
    prefix="/api/v1",
    tags=["compreface"],
    route_class=CompreFaceRoute,
    responses={
        400: {"model": cf.CompreFaceError},
        401: {"model": cf.CompreFaceError},
        404: {"model": cf.CompreFaceError},
    },
)

# Each route checks its caller: recognition (identify, verify, detect) needs what FaceGate's own recognition routes
# need, the face collection and subjects what enrollment needs, erasing a member what FaceGate's member delete needs.
RecognitionCaller = IdentifyCaller
RECOGNITION = [Depends(require_role(Role.IDENTIFY))]
ENROLLMENT = [Depends(require_role(Role.SERVICE))]


def _image_body(*names: str) -> dict[str, Any]:
    files = {name: {"type": "string", "format": "binary"} for name in names}
    encoded = {name: {"type": "string", "description": "The image, base64"} for name in names}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": list(names), "properties": files}},
                "application/json": {"schema": {"type": "object", "required": list(names), "properties": encoded}},
            },
        }
    }


async def _file(request: Request, settings: SettingsDep) -> bytes:
    return (await compreface_images(request, settings, ("file",)))["file"]


async def _two_images(request: Request, settings: SettingsDep) -> dict[str, bytes]:
    return await compreface_images(request, settings, ("source_image", "target_image"))


ImageDep = Annotated[bytes, Depends(_file)]


@dataclass(frozen=True)
class FaceOptions:
    limit: int
    det_prob_threshold: float | None
    plugins: frozenset[str]
    status: bool

    def chosen(self, faces: list[AnalyzedFace]) -> list[AnalyzedFace]:
        """The faces the client asked about: sure enough to be faces, the biggest `limit` (0: all); at least one."""
        sure = [f for f in faces if self.det_prob_threshold is None or f.detection.score >= self.det_prob_threshold]
        biggest = sorted(sure, key=lambda f: f.detection.size, reverse=True)
        return compat.require_faces(biggest[: self.limit] if self.limit else biggest)

    @property
    def versions(self) -> dict[str, str] | None:
        return cf.plugin_versions(self.plugins, self.status)


def face_options(
    limit: Annotated[int, Query(ge=0, description="The biggest faces to look at; 0: all")] = 0,
    det_prob_threshold: Annotated[
        float | None, Query(ge=0, le=1, description="Faces the detector is less sure of are left out")
    ] = None,
    face_plugins: Annotated[
        str, Query(description="landmarks, pose and calculator are answered; other names are ignored")
    ] = "",
    status: Annotated[str, Query(description="true: add plugins_versions")] = "false",
) -> FaceOptions:
    # Clients send what they have: Double Take `face_plugins=undefined`, the Python SDK `status=False`.
    names = {name.strip().lower() for name in face_plugins.split(",")}
    return FaceOptions(
        limit, det_prob_threshold, frozenset(names & cf.ANSWERED_PLUGINS), status.lower() in ("true", "1")
    )


OptionsDep = Annotated[FaceOptions, Depends(face_options)]


def _prediction_count(
    prediction_count: Annotated[int, Query(description="Subjects per face; -1: as many as FaceGate lists")] = 1,
) -> int:
    if prediction_count == -1 or prediction_count >= 1:
        return prediction_count
    raise FaceGateError("Prediction count should be any positive number or -1", code="validation_error")


def _subject(name: str) -> str:
    """A subject name as a member's external id holds it."""
    if not 1 <= len(name) <= 255 or "\x00" in name:
        raise FaceGateError("A subject is 1 to 255 characters, without NUL.", code="validation_error", field="subject")
    return name


@router.post(
    "/recognition/recognize",
    response_model=cf.CompreFaceRecognizeResponse,
    response_model_exclude_none=True,
    openapi_extra=_image_body("file"),
    operation_id="compreface-recognize",
)
def recognize(
    image: ImageDep,
    options: OptionsDep,
    prediction_count: Annotated[int, Depends(_prediction_count)],
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    caller: RecognitionCaller,
) -> cf.CompreFaceRecognizeResponse:
    """Who is in the photo: FaceGate's identify, recorded as its attempts. Each face's `subjects` starts with the
    member FaceGate decided on; `similarity` >= 0.60 is FaceGate's match, 0.40-0.60 its review band."""
    faces = options.chosen(pipeline.analyze_photo(image))
    count = settings.top_k_max if prediction_count == -1 else min(prediction_count, settings.top_k_max)
    # At least FaceGate's own top_k: a blacklisted nearest member lets the next one decide, as in /v1/identify.
    found = recognition.identify(
        session, settings, gallery, faces, threshold=None, k=max(count, settings.top_k), caller=caller
    )
    return cf.CompreFaceRecognizeResponse(
        result=[cf.CompreFaceRecognizedFace.of(r, found.rule, count, options.plugins) for r in found.faces],
        plugins_versions=options.versions,
    )


@router.post(
    "/recognition/faces",
    status_code=201,
    response_model=cf.CompreFaceAddedExample,
    openapi_extra=_image_body("file"),
    operation_id="compreface-faces-add",
)
def add_face(
    subject: Annotated[str, Query()],
    image: ImageDep,
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    caller: ServiceCaller,
    det_prob_threshold: Annotated[float | None, Query(ge=0, le=1)] = None,
) -> cf.CompreFaceAddedExample:
    """Add an example (a face) to a subject (a member, created by its first face), through FaceGate's quality gate
    and duplicate-signup check; a refusal says why in `message`."""
    name = _subject(subject)
    face = compat.gate_example(pipeline.analyze_photo(image), settings, min_detection=det_prob_threshold, largest=False)
    stored, created = compat.add_example(session, settings, gallery, name, face, caller=caller)
    return cf.CompreFaceAddedExample(
        image_id=stored.id, subject=name, facegate={"member_id": str(stored.member_id), "created": created}
    )


@router.get(
    "/recognition/faces",
    response_model=cf.CompreFaceExamplePage,
    dependencies=ENROLLMENT,
    operation_id="compreface-faces-list",
)
def list_faces(
    session: SessionDep,
    page: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    size: Annotated[int, Query(ge=1, le=1000)] = 20,
    subject: str | None = None,
) -> cf.CompreFaceExamplePage:
    found = compat.list_examples(session, subject=subject, page=page, size=size)
    return cf.CompreFaceExamplePage(
        faces=[cf.CompreFaceExample(image_id=face_id, subject=name) for face_id, name in found.faces],
        page_number=page,
        page_size=size,
        total_pages=math.ceil(found.total / size),
        total_elements=found.total,
    )


@router.delete(
    "/recognition/faces", response_model=cf.CompreFaceDeleted, operation_id="compreface-faces-delete-subject"
)
def delete_subject_faces(
    session: SessionDep, caller: ServiceCaller, subject: Annotated[str | None, Query()] = None
) -> cf.CompreFaceDeleted:
    """Remove every example of a subject (the member stays, with no faces); an unknown subject has none. The whole
    collection at once (no `subject`) is not erased through this API."""
    if subject is None:
        raise FaceGateError(
            "Required parameter subject is missing: FaceGate does not erase the whole collection through the"
            " CompreFace API (delete subjects one by one, or members with a service key).",
            code="missing_field",
            field="subject",
        )
    member = compat.find_subject(session, _subject(subject))
    return cf.CompreFaceDeleted(deleted=compat.remove_examples(session, member, actor=caller) if member else 0)


@router.post(
    "/recognition/faces/delete", response_model=list[cf.CompreFaceExample], operation_id="compreface-faces-delete-many"
)
def delete_faces(image_ids: list[uuid.UUID], session: SessionDep, caller: ServiceCaller) -> list[cf.CompreFaceExample]:
    """Remove these examples; ids that are not found are skipped."""
    removed = []
    for face_id in dict.fromkeys(image_ids):
        try:
            face, name = compat.subject_of_face(session, face_id)
        except NotFoundError:
            continue
        members.remove_face(session, face, actor=caller)
        removed.append(cf.CompreFaceExample(image_id=face_id, subject=name))
    return removed


@router.delete(
    "/recognition/faces/{image_id}", response_model=cf.CompreFaceExample, operation_id="compreface-faces-delete"
)
def delete_face(image_id: uuid.UUID, session: SessionDep, caller: ServiceCaller) -> cf.CompreFaceExample:
    face, name = compat.subject_of_face(session, image_id)
    members.remove_face(session, face, actor=caller)
    return cf.CompreFaceExample(image_id=image_id, subject=name)


@router.get(
    "/recognition/faces/{image_id}/img",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
    dependencies=ENROLLMENT,
    operation_id="compreface-faces-image",
)
def face_image(image_id: uuid.UUID, session: SessionDep) -> Response:
    """The stored face: FaceGate keeps the 160x160 crop that was embedded, not the uploaded photo."""
    face, _ = compat.subject_of_face(session, image_id)
    if face.crop_jpeg is None:
        raise NotFoundError("No image is stored for this face.", code="crop_not_found", face_id=str(image_id))
    return Response(content=face.crop_jpeg, media_type="image/jpeg")


@router.post(
    "/recognition/faces/{image_id}/verify",
    response_model=cf.CompreFaceVerifyResponse,
    response_model_exclude_none=True,
    openapi_extra=_image_body("file"),
    operation_id="compreface-faces-verify",
)
def verify_face(
    image_id: uuid.UUID,
    image: ImageDep,
    options: OptionsDep,
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
    caller: RecognitionCaller,
) -> cf.CompreFaceVerifyResponse:
    """Is the photo's largest face the subject this example belongs to? FaceGate's verify against the member's
    template (which the example is part of), recorded as its attempt."""
    face, _ = compat.subject_of_face(session, image_id)
    faces = options.chosen(pipeline.analyze_photo(image))
    verification = recognition.verify(session, settings, gallery, face.member_id, faces, threshold=None, caller=caller)
    result = verification.result
    (nearest,) = compat.predictions(result, verification.rule, 1)
    return cf.CompreFaceVerifyResponse(
        result=[
            cf.CompreFaceVerifiedFace(
                box=cf.CompreFaceBox.of(result.face),
                similarity=nearest.similarity,
                facegate=cf.FaceGateView.of(result),
                **cf.CompreFacePluginFields.fields(result.face, options.plugins),
            )
        ],
        plugins_versions=options.versions,
    )


@router.post(
    "/recognition/subjects",
    status_code=201,
    response_model=cf.CompreFaceSubjectBody,
    dependencies=ENROLLMENT,
    operation_id="compreface-subjects-add",
)
def add_subject(body: cf.CompreFaceSubjectBody, session: SessionDep) -> cf.CompreFaceSubjectBody:
    """A subject with no examples yet: a member with no faces."""
    compat.create_subject(session, _subject(body.subject))
    return cf.CompreFaceSubjectBody(subject=body.subject)


@router.get(
    "/recognition/subjects",
    response_model=cf.CompreFaceSubjectList,
    dependencies=ENROLLMENT,
    operation_id="compreface-subjects-list",
)
def list_subjects(session: SessionDep) -> cf.CompreFaceSubjectList:
    return cf.CompreFaceSubjectList(subjects=compat.subject_names(session))


@router.delete(
    "/recognition/subjects",
    response_model=cf.CompreFaceDeleted,
    dependencies=ENROLLMENT,
    operation_id="compreface-subjects-delete-all",
)
def delete_all_subjects() -> cf.CompreFaceDeleted:
    """Not offered: FaceGate does not erase every member through the CompreFace API (400, code 33)."""
    raise FaceGateError(
        "Required parameter subject is missing: FaceGate does not erase every subject at once through the"
        " CompreFace API (delete subjects one by one, or members with a service key).",
        code="missing_field",
        field="subject",
    )


@router.put(
    "/recognition/subjects/{subject}",
    response_model=cf.CompreFaceSubjectUpdated,
    operation_id="compreface-subjects-rename",
)
def rename_subject(
    subject: str, body: cf.CompreFaceSubjectBody, session: SessionDep, caller: ServiceCaller
) -> cf.CompreFaceSubjectUpdated:
    """Rename a subject (the member's external id). A name that is taken is refused (43), not merged."""
    compat.rename_subject(session, compat.get_subject(session, _subject(subject)), _subject(body.subject), actor=caller)
    return cf.CompreFaceSubjectUpdated(updated=True)


@router.delete(
    "/recognition/subjects/{subject}",
    response_model=cf.CompreFaceSubjectBody,
    operation_id="compreface-subjects-delete",
)
def delete_subject(subject: str, session: SessionDep, caller: ServiceCaller) -> cf.CompreFaceSubjectBody:
    """Erase the subject as FaceGate erases a member: with its faces, crops and recorded attempts (service key)."""
    members.delete_member(session, compat.get_subject(session, _subject(subject)), actor=caller)
    return cf.CompreFaceSubjectBody(subject=subject)


@router.post(
    "/detection/detect",
    response_model=cf.CompreFaceDetectResponse,
    response_model_exclude_none=True,
    openapi_extra=_image_body("file"),
    dependencies=RECOGNITION,
    operation_id="compreface-detect",
)
def detect(image: ImageDep, options: OptionsDep, pipeline: PipelineDep) -> cf.CompreFaceDetectResponse:
    """Faces in a photo; nothing is stored."""
    faces = options.chosen(pipeline.analyze_photo(image))
    return cf.CompreFaceDetectResponse(
        result=[cf.CompreFaceDetectedFace.of(face, options.plugins) for face in faces],
        plugins_versions=options.versions,
    )


@router.post(
    "/verification/verify",
    response_model=cf.CompreFaceVerificationResponse,
    response_model_exclude_none=True,
    openapi_extra=_image_body("source_image", "target_image"),
    dependencies=RECOGNITION,
    operation_id="compreface-verification",
)
def verification(
    images: Annotated[dict[str, bytes], Depends(_two_images)],
    options: OptionsDep,
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
) -> cf.CompreFaceVerificationResponse:
    """The source photo's largest face against each face of the target photo, at FaceGate's 1:1 verify targets.
    Neither photo is a member's, so nothing is recorded."""
    source = max(compat.require_faces(pipeline.analyze_photo(images["source_image"])), key=lambda f: f.detection.size)
    targets = options.chosen(pipeline.analyze_photo(images["target_image"]))
    matches = []
    for target in targets:
        compared = compat.compare(session, settings, gallery, source.embedding, target.embedding)
        matches.append(
            cf.CompreFaceComparedFace(
                box=cf.CompreFaceBox.of(target),
                similarity=compared.similarity,
                **cf.CompreFacePluginFields.fields(target, options.plugins),
            )
        )
    return cf.CompreFaceVerificationResponse(
        result=[
            cf.CompreFaceVerification(
                source_image_face=cf.CompreFaceDetectedFace.of(source, options.plugins),
                face_matches=sorted(matches, key=lambda m: m.similarity, reverse=True),
                plugins_versions=options.versions,
            )
        ]
    )
