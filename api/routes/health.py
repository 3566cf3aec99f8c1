from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.schemas import Health
from db.session import get_engine

router = APIRouter(tags=["health"])


@router.get("/health/live", response_model=Health, operation_id="health-live")
def live() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/health/ready", response_model=Health, responses={503: {"model": Health}}, operation_id="health-ready")
def ready(request: Request):
    """The database answers and the models are loaded: the service can take requests."""
    pipeline = getattr(request.app.state, "pipeline", None)
    checks = {"models": "ok" if pipeline and (pipeline.loaded or not pipeline.settings.preload_models) else "loading"}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports the failure instead of raising it
        checks["database"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in checks.values())
    # A calibration that cannot be fitted is reported, not fatal: decisions go on with the last good fit or the
    # prior (services.identity.calibration.GalleryCalibration), so the service stays in rotation.
    gallery = getattr(request.app.state, "gallery", None)
    if gallery is not None and gallery.fallback_reason:
        checks["calibration"] = f"fallback: {gallery.fallback_reason}"
    body = Health(status="ok" if healthy else "unavailable", checks=checks)
    return body if healthy else JSONResponse(status_code=503, content=body.model_dump())
