"""DeepStack's face API (as CodeProject.AI's face module answers it) on FaceGate's members, identify and detect,
for clients written for DeepStack (Home Assistant's DeepStack face integration, Double Take, Blue Iris, Agent DVR).
Requests are forms with the key in the `api_key` field; answers carry `success`; errors are {"success": false,
"error"} (api/compat.py). A photo whose content does not qualify (no face) is an answer, not a bad request: 200 with
success false and the message the clients look for; a malformed request is a 4xx."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData

from api import compat_schemas as cf
from api.compat import (
    DeepStackRoute,
    deepstack_caller,
    deepstack_form,
    deepstack_images,
    form_fraction,
    form_text,
)
from api.deps import GalleryDep, PipelineDep, SessionDep, SettingsDep
from core.enums import Role
from core.errors import FaceGateError, FaceRejectedError
from services.identity import compat, members, recognition

router = APIRouter(
    prefix="/v1/vision/face",
    tags=["deepstack"],
    route_class=DeepStackRoute,
    responses={400: {"model": cf.DeepStackFailure}, 401: {"model": cf.DeepStackFailure}},
)

FormDep = Annotated[FormData, Depends(deepstack_form)]

# Each route checks its caller by the form's key: recognition needs what FaceGate's own recognition routes need,
# registering what enrollment needs, deleting a user what FaceGate's member delete needs.
RECOGNITION_ROLE = Role.IDENTIFY
ENROLLMENT_ROLE = Role.SERVICE


def _form(*fields: str, files: str = "image") -> dict[str, Any]:
    properties: dict[str, Any] = {"api_key": {"type": "string", "description": "A FaceGate API key"}}
    properties |= {name: {"type": "string"} for name in fields}
    properties |= {name: {"type": "string", "format": "binary"} for name in files.split()}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object", "properties": properties}}},
        }
    }


def _userid(form: FormData) -> str:
    userid = form_text(form, "userid")
    if userid is None:
        raise FaceGateError("user id not specified", code="missing_field", field="userid")
    if len(userid) > 255 or "\x00" in userid:
        raise FaceGateError("userid is at most 255 characters, without NUL.", code="validation_error")
    return userid


@router.post(
    "",
    response_model=cf.DeepStackDetectResponse,
    openapi_extra=_form("min_confidence"),
    operation_id="deepstack-detect",
)
def detect(request: Request, form: FormDep, pipeline: PipelineDep, settings: SettingsDep) -> cf.DeepStackDetectResponse:
    """Faces in the image at or above `min_confidence` (detection probability); nothing is stored."""
    deepstack_caller(request, form, RECOGNITION_ROLE)
    (image,) = deepstack_images(form, settings, ("image",))
    least = form_fraction(form, "min_confidence", 0.0)
    faces = [f for f in pipeline.analyze_photo(image) if f.detection.score >= least]
    predictions = [
        cf.DeepStackDetection(confidence=round(f.detection.score, 5), **cf.DeepStackBox.fields(f)) for f in faces
    ]
    return cf.DeepStackDetectResponse(predictions=predictions, count=len(predictions))


@router.post(
    "/recognize",
    response_model=cf.DeepStackRecognizeResponse,
    response_model_exclude_none=True,
    openapi_extra=_form("min_confidence"),
    operation_id="deepstack-recognize",
)
def recognize(
    request: Request,
    form: FormDep,
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
) -> cf.DeepStackRecognizeResponse:
    """FaceGate's identify, recorded as its attempts: `userid` is the member FaceGate names, "unknown" otherwise
    (the review band included); `min_confidence` can only make it stricter."""
    caller = deepstack_caller(request, form, RECOGNITION_ROLE)
    (image,) = deepstack_images(form, settings, ("image",))
    least = form_fraction(form, "min_confidence", 0.0)
    faces = pipeline.analyze_photo(image)
    if not faces:
        return cf.DeepStackRecognizeResponse(success=False, error="No face found in image", predictions=[], count=0)
    found = recognition.identify(session, settings, gallery, faces, threshold=None, k=settings.top_k, caller=caller)
    predictions = []
    for result in found.faces:
        ranked = compat.predictions(result, found.rule, 1)
        confidence = ranked[0].similarity if ranked else 0.0
        named = result.match is not None and confidence >= least
        predictions.append(
            cf.DeepStackPrediction(
                userid=result.match.external_id if result.match and named else "unknown",
                confidence=confidence,
                facegate=cf.FaceGateView.of(result),
                **cf.DeepStackBox.fields(result.face),
            )
        )
    known = any(p.userid != "unknown" for p in predictions)
    return cf.DeepStackRecognizeResponse(
        success=True,
        predictions=predictions,
        count=len(predictions),
        message="A face was recognised" if known else "No known faces",
    )


@router.post(
    "/register",
    response_model=cf.DeepStackRegistered,
    response_model_exclude_none=True,
    openapi_extra=_form("userid", files="image image1 image2"),
    operation_id="deepstack-register",
)
def register(
    request: Request,
    form: FormDep,
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
) -> cf.DeepStackRegistered:
    """Add the images' faces (`image`, or `image1`..`imageN`; the largest face of each) to the member whose external
    id is `userid`, created by its first face, through FaceGate's quality gate and duplicate-signup check. Images
    the gate refuses are skipped; when none is left, success is false with the reason."""
    caller = deepstack_caller(request, form, ENROLLMENT_ROLE)
    userid = _userid(form)
    accepted, refusals = [], []
    for image in deepstack_images(form, settings):
        try:
            accepted.append(
                compat.gate_example(pipeline.analyze_photo(image), settings, min_detection=None, largest=True)
            )
        except FaceRejectedError as exc:
            refusals.append(exc)
    if not accepted:
        reasons = {exc.code for exc in refusals}
        error = "No face detected" if reasons == {"no_face"} else refusals[0].message
        return cf.DeepStackRegistered(success=False, error=error)
    created = False
    for face in accepted:
        stored, new = compat.add_example(session, settings, gallery, userid, face, caller=caller)
        created = created or new
    return cf.DeepStackRegistered(
        success=True,
        message="face added" if created else "face updated",
        facegate={
            "member_id": str(stored.member_id),
            "faces_added": len(accepted),
            "refused": [exc.message for exc in refusals],
        },
    )


@router.post("/list", response_model=cf.DeepStackFaceList, openapi_extra=_form(files=""), operation_id="deepstack-list")
def list_faces(request: Request, form: FormDep, session: SessionDep) -> cf.DeepStackFaceList:
    """The registered users: every member's external id."""
    deepstack_caller(request, form, ENROLLMENT_ROLE)
    return cf.DeepStackFaceList(faces=compat.subject_names(session))


@router.post(
    "/delete", response_model=cf.DeepStackDone, openapi_extra=_form("userid", files=""), operation_id="deepstack-delete"
)
def delete(request: Request, form: FormDep, session: SessionDep) -> cf.DeepStackDone:
    """Erase the user as FaceGate erases a member (service key); a user that does not exist is already gone."""
    caller = deepstack_caller(request, form, Role.SERVICE)
    member = compat.find_subject(session, _userid(form))
    if member is not None:
        members.delete_member(session, member, actor=caller)
    return cf.DeepStackDone()


@router.post(
    "/match",
    response_model=cf.DeepStackMatch,
    response_model_exclude_none=True,
    openapi_extra=_form(files="image1 image2"),
    operation_id="deepstack-match",
)
def match(
    request: Request,
    form: FormDep,
    session: SessionDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    gallery: GalleryDep,
) -> cf.DeepStackMatch:
    """The largest faces of two images compared at FaceGate's 1:1 verify targets (nothing recorded: neither is a
    member's); `similarity` on the same scale as recognize."""
    deepstack_caller(request, form, RECOGNITION_ROLE)
    images = deepstack_images(form, settings, ("image1", "image2"))
    faces = [pipeline.analyze_photo(image) for image in images]
    if not all(faces):
        return cf.DeepStackMatch(success=False, error="No face found in one or both images")
    first, second = (max(found, key=lambda f: f.detection.size) for found in faces)
    compared = compat.compare(session, settings, gallery, first.embedding, second.embedding)
    return cf.DeepStackMatch(
        success=True,
        similarity=compared.similarity,
        facegate={"match": compared.match, "distance": round(compared.distance, 5)},
    )
