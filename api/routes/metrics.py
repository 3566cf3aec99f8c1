from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus metrics (core/metrics.py), without an API key: counts and timings, no personal data.
    FACEGATE_METRICS_ENABLED=false removes the endpoint."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
