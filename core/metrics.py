"""Every Prometheus metric of the service, in one place; served at /metrics (api/routes/metrics.py).

Labels stay few and bounded: a route's template (never the raw path), a status code, a stage, a kind of decision.
They live in prometheus_client's default registry: one service process, one set of metrics."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "facegate_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "facegate_http_request_duration_seconds",
    "Time from a request's arrival to its last response byte, by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MODEL_STAGE = Histogram(
    "facegate_model_stage_seconds",
    "Time per photo in each stage of the face pipeline (decode, detect, align, embed, expression)",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INFERENCE_QUEUE = Gauge("facegate_inference_queue_depth", "Calls waiting for or running on the single inference thread")
DB_POOL_CHECKED_OUT = Gauge("facegate_db_pool_checked_out", "Database connections in use by requests now")
DB_POOL_LIMIT = Gauge(
    "facegate_db_pool_limit",
    "Most database connections the pool opens (pool size + overflow); beyond it, requests wait",
)
GALLERY_MEMBERS = Gauge("facegate_gallery_members", "Members with a template (searchable), as last counted")
DECISIONS = Counter(
    "facegate_decisions_total",
    "Recorded decisions: identify (match/review/unknown) and verify (match/no_match) per face; "
    "enroll: enrolled (stored, queued as a possible duplicate) or duplicate_face (refused)",
    ["kind", "decision"],
)
