"""All configuration in one place, read from the environment (prefix FACEGATE_) or a .env file."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_", env_file=".env", extra="ignore")

    # Storage. With no DATABASE_URL an embedded PostgreSQL (with pgvector) keeps its data under data_dir/pgdata.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "FACEGATE_DATABASE_URL")
    )
    # Identify's member search on a read replica (a streaming standby of the database above): the writes (attempts,
    # enrollment, its duplicate check, verify) stay on the primary. A member enrolled a moment ago is found once
    # the replica has replayed it (its lag). None: everything on the primary.
    search_replica_url: str | None = None
    data_dir: Path = Path("data")
    weights_dir: Path = Path("data/models")

    @field_validator("data_dir", "weights_dir")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        """Relative to the working folder at start, once: a child process (the ONNX export) or a later chdir then
        sees the same folders."""
        return path.expanduser().absolute()

    host: str = "127.0.0.1"
    port: int = 8000
    # HTTPS (core/tls.py, README "HTTPS on a LAN"): with both set, `facegate serve` serves HTTPS with this
    # certificate (PEM, chain included) and key. The desk pages need it on any computer but the server itself.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # The HTTP server (api/server.py): a request's head must arrive within header_timeout_seconds (slow senders
    # would hold connections forever); idle kept-alive connections close after keep_alive_seconds. A proxy's
    # X-Forwarded-Proto/-For is believed from trusted_proxies only (comma-separated addresses or networks, "*":
    # any): behind a TLS proxy the sign-in cookies are then Secure.
    header_timeout_seconds: float = Field(default=10, gt=0)
    keep_alive_seconds: int = Field(default=5, ge=1)
    trusted_proxies: str = "127.0.0.1"

    # Models.
    # Apparent expression (emotion) of each face. Off, the expression model is not loaded or run, nothing is stored
    # and answers say null: the EU AI Act (art. 5(1)(f)) prohibits emotion recognition in workplaces and schools,
    # so deployments there must turn it off (README: What FaceGate does not do). On by default for existing clients.
    expression_enabled: bool = True
    facenet_weights: Literal["facenet_keras.h5", "facenet_weights.h5"] = "facenet_keras.h5"
    # "deepface" needs the `deepface` extra (deepface and torch) and its weights file.
    expression_model: Literal["mini_xception", "deepface"] = "mini_xception"
    # Where the networks run: ONNX Runtime (graphs built once from the weight files into data_dir/onnx, no torch)
    # or PyTorch itself (the dev install), the source of truth the ONNX graphs are checked against.
    inference_runtime: Literal["onnx", "torch"] = "onnx"
    inference_threads: int = Field(default=0, ge=0, description="0 = one per CPU core")
    # FaceNet's arithmetic in the onnx runtime. bfloat16 runs it in OpenVINO, faster on CPUs with AVX-512 BF16 or
    # AMX, with embeddings slightly off float32's; float32 (ONNX Runtime) keeps PyTorch's (docs/performance.md).
    # A CPU without bfloat16 instructions runs float32 either way.
    embedding_precision: Literal["float32", "bfloat16"] = "bfloat16"
    # Faces of requests that arrive while the networks are busy are embedded together, up to this many per pass.
    max_inference_batch: int = Field(default=16, ge=1)
    # Load the models at start-up (readiness waits for them). Off, they load on first use: the fast test tier
    # starts the app without touching the weights.
    preload_models: bool = True
    # Smallest face MTCNN looks for (about: its windows stretch to faces ~half this size). The enrollment gate's
    # minimum: smaller faces are too small to enroll or recognise, and the two pyramid levels that look only for
    # them took much of the detect stage (docs/performance.md). 20 looks as far down as facenet-pytorch does.
    detector_min_face_size: int = Field(default=40, ge=12)

    # Decisions (services.identity.calibration, README "How decisions are made"). Identify names a member when the estimated
    # chance that a stranger comes that near some member of the current gallery (FPIR) is at most
    # identify_fpir; up to review_fpir the face is in the review band (nobody named, queued for a person).
    identify_fpir: float = Field(default=0.01, gt=0, lt=0.5)
    review_fpir: float = Field(default=0.05, gt=0, lt=0.5)
    # Verify (1:1) and the duplicate-signup check's "confident" band use the per-pair false accept rate.
    # The default and the fixed threshold it replaced were compared on LFW (docs/identification.md).
    verify_far: float = Field(default=0.003, gt=0, lt=0.5)
    verify_review_far: float = Field(default=0.01, gt=0, lt=0.5)
    # Impostor cosine similarity (a face vs another person's 3-photo template) in its upper tail, s = a + b*z:
    # fitted on LFW people with >= 3 photos (docs/identification.md); the gallery's own estimate takes over as it
    # grows.
    prior_impostor_a: float = -0.0440
    prior_impostor_b: float = 0.1939
    calibration_sample_members: int = 1000
    calibration_refit_seconds: float = 300
    calibration_refit_change: float = 0.05
    # A member's faces at most; a learned face beyond it pushes out the oldest learned one (signup faces never go).
    max_faces_per_member: int = 10
    # Learning from visits (services.identity.learning): the probe of a match this confident (identify: at this
    # FPIR; verify, and the check against the member's signup faces: at this per-pair false accept rate) becomes a
    # learned face of the member, when it passes the enrollment gate and is at least learn_min_novelty from every
    # face the member has, at most learn_max_per_day a day per member. Defaults: docs/identification.md.
    learn_from_visits: bool = True
    learn_identify_fpir: float = Field(default=0.003, gt=0, lt=0.5)
    learn_verify_far: float = Field(default=0.001, gt=0, lt=0.5)
    learn_min_novelty: float = Field(default=0.5, ge=0, le=2)
    learn_max_per_day: int = Field(default=3, ge=0)
    # Distances are Euclidean between L2-normalised vectors (0 = identical, 2 = opposite). A per-request
    # `threshold` replaces the calibrated decision with this fixed distance (no review band); `eval-lfw` reports
    # against match_threshold (0.01 below the nearest different-person pair of LFW fold 1).
    match_threshold: float = 1.05
    threshold_min: float = 0.2
    threshold_max: float = 1.6
    top_k: int = 5
    top_k_max: int = 50
    # A probe within this distance of a blacklisted (member, probe) pair never matches that member.
    blacklist_radius: float = 0.6
    # Search (services.identity.matching, docs/scaling.md). The HNSW index finds the true nearest template for
    # this share of probes: the service picks hnsw.ef_search for it from bench/scale.py's curves at the gallery's
    # size (services.identity.matching.EF_SEARCH_FOR_RECALL; docs/scaling.md); search_ef_search, when set, is
    # used instead. The index orders half-precision copies of the templates;
    # the nearest search_rerank_candidates of them are re-ranked by the exact distance.
    search_recall_target: float = Field(default=0.99, gt=0, lt=1)
    search_ef_search: int | None = Field(default=None, ge=1, le=1000)
    search_rerank_candidates: int = Field(default=20, ge=1, le=1000)

    # Review. Probe face crops of attempts are erased after this many days (their embeddings stay, as the
    # blacklist needs them); the purge runs at start-up, hourly, and with `facegate purge-crops`.
    crop_retention_days: float = 30
    admin_session_hours: float = 12
    # Sign-in to /admin and /desk: after this many failures from one address within the window, that address is
    # answered 429 (Retry-After) until the oldest failure leaves the window.
    signin_failures_limit: int = Field(default=10, ge=1)
    signin_failures_window_seconds: float = Field(default=300, gt=0)

    # Webhooks (services.identity.webhooks): the due deliveries are sent every webhook_poll_seconds; a failed try
    # is retried after webhook_retry_seconds, doubling each time, up to webhook_max_attempts tries. A try has
    # webhook_timeout_seconds in all (connect, send, the answer's headers), so a receiver that trickles its answer
    # holds one of webhook_concurrency sending threads that long at most, and other receivers are served meanwhile.
    webhook_poll_seconds: float = 5
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    webhook_retry_seconds: float = 30
    webhook_max_attempts: int = 8
    webhook_concurrency: int = Field(default=4, ge=1)
    # Off, webhook URLs whose host resolves to a loopback or private address (10/8, 192.168/16, fc00::/7, ...) are
    # refused, so a key's webhook cannot be aimed at the service's own network; turn on for receivers on the
    # premises. Link-local (cloud metadata), unspecified and multicast addresses are refused either way.
    webhook_allow_private_networks: bool = False

    # Consent (GDPR art. 9, BIPA): a signup may carry consent_text_version (which consent text the person agreed to)
    # and consent_given_at; both are kept with the member and audited. require_consent refuses signups through the
    # API and the desk without them (422 consent_required); off by default so existing integrations keep working.
    # The desk's signup checkbox records consent_text_version, the version of the text shown at the desk.
    require_consent: bool = False
    consent_text_version: str = Field(default="1", min_length=1, max_length=64)

    # Enrollment quality gate.
    min_face_size: int = 40
    min_detection_score: float = 0.95
    min_sharpness: float = 25.0
    store_face_crops: bool = True

    # Live identify streams (/v1/identify/stream, /desk/stream; services/identity/streams.py): faces are followed
    # across frames into tracks, one per person passing. A track is decided on its best `stream_track_best_frames`
    # frames fused; a different decision must come on `stream_track_switch_frames` frames in a row to replace the
    # one shown; the track is recorded as one attempt once seen on `stream_track_settle_frames` frames; unseen for
    # `stream_track_gap_seconds` it has left (the same face later is a new visit and a new attempt).
    stream_track_best_frames: int = Field(default=5, ge=1)
    stream_track_switch_frames: int = Field(default=3, ge=1)
    stream_track_settle_frames: int = Field(default=3, ge=1)
    stream_track_gap_seconds: float = Field(default=3, gt=0)
    # The desk's identify page names people and what to do; the apparent expression is for demonstrations only.
    desk_show_expression: bool = False

    # Operations (README "Operations"). /metrics answers without an API key (counts and timings, no personal
    # data); keep it off the public network or turn it off. Logs: JSON lines under `facegate serve`, or plain text;
    # past repeat_limit identical warnings/errors per interval, one "suppressed K similar" line stands for the rest.
    metrics_enabled: bool = True
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_repeat_limit: int = Field(default=5, ge=1)
    log_repeat_interval_seconds: float = Field(default=60, gt=0)

    # Input limits. A multipart body may carry up to max_faces_per_member photos, a batch signup
    # (POST /v1/members/batch) up to max_batch_members members and as many full-size photos; a JSON or form body
    # (no photos) at most max_json_body_bytes; member metadata at most max_metadata_bytes as JSON.
    max_upload_bytes: int = 10 * 1024 * 1024
    max_batch_members: int = Field(default=32, ge=1)
    max_image_pixels: int = 40_000_000
    max_json_body_bytes: int = 1024 * 1024
    max_metadata_bytes: int = 8 * 1024

    # Database outages: clients get 503 with this Retry-After; the embedded server is checked this often and
    # restarted when it has stopped.
    database_retry_after_seconds: int = 5
    embedded_check_seconds: float = 5
    # The embedded server's memory and parallel index builds (db/session.py); None = sized to this machine:
    # shared_buffers a quarter of its memory (at most 8 GiB), maintenance_work_mem an eighth (at most 4 GiB),
    # one parallel maintenance worker per core beyond the first (at most 4).
    embedded_shared_buffers_mb: int | None = Field(default=None, ge=16)
    embedded_maintenance_work_mem_mb: int | None = Field(default=None, ge=64)
    embedded_parallel_maintenance_workers: int | None = Field(default=None, ge=0, le=64)

    # Resident memory (core/memory.py): glibc malloc arenas for the whole process, and how often freed heap pages
    # are handed back to the system.
    malloc_arenas: int = Field(default=2, ge=1)
    memory_trim_seconds: float = Field(default=2, gt=0)
    # Blocks this large or larger get pages of their own, given back when freed (core/memory.py): a lower peak
    # under large uploads, but every HD frame's buffers then come zeroed from the system (720p identify 114 ms
    # instead of 86); 0: glibc's sliding threshold (docs/performance.md, "Memory after large bodies").
    malloc_mmap_threshold_bytes: int = Field(default=0, ge=0, le=32 * 1024 * 1024)


@lru_cache
def get_settings() -> Settings:
    return Settings()
