#!/usr/bin/env bash
# make docker-smoke: build the Dockerfile's image and run it as a user would. A private Docker engine (its own
# folders and socket under a temporary folder, host networking only, no registry) builds the image on a base made
# from Debian's packages (debootstrap, cached), runs it with the weights mounted read-only and the embedded
# PostgreSQL, waits until it is ready, enrolls an LFW person and identifies another photo of them, checks that the
# service runs as a non-root user, prints the image size, and removes everything it started. Needs root (CI runs
# as root); installs docker.io and debootstrap when they are missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WEIGHTS=$(realpath "${FACEGATE_WEIGHTS_DIR:-$ROOT/../shared/models}")
LFW=$(realpath "${FACEGATE_LFW_IMAGES:-$ROOT/../shared/data/lfw/images}")
CACHE=${FACEGATE_SMOKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facegate/docker-smoke}
PORT=${FACEGATE_SMOKE_PORT:-18765}
READY_TIMEOUT=${FACEGATE_SMOKE_READY_TIMEOUT:-900}
IMAGE=facegate:smoke
CONTAINER=facegate-smoke
START=$SECONDS

say() { echo "docker-smoke: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (a private dockerd and debootstrap); CI runs it as root"
[ -f "$WEIGHTS/facenet_keras.h5" ] || fail "no weights in $WEIGHTS (set FACEGATE_WEIGHTS_DIR)"
[ -d "$LFW" ] || fail "no LFW images in $LFW (set FACEGATE_LFW_IMAGES)"
if ! command -v dockerd > /dev/null || ! command -v debootstrap > /dev/null; then
    say "installing docker.io and debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap > /dev/null
fi
# Debian's client, of the engine's version, where both are installed.
DOCKER_CLI=$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || command -v docker)

# Short: the engine's sockets live under it (unix socket paths are limited to 108 characters).
WORK=$(mktemp -d /tmp/fgsmoke.XXXXXX)
DOCKER=("$DOCKER_CLI" -H "unix://$WORK/docker.sock")
cleanup() {
    local status=$?
    if [ -n "${DOCKERD_PID:-}" ]; then
        "${DOCKER[@]}" rm -f "$CONTAINER" > /dev/null 2>&1 || true
        kill "$DOCKERD_PID" 2> /dev/null || true
        wait "$DOCKERD_PID" 2> /dev/null || true
    fi
    # Whatever the engine left mounted under its folders, then the folders.
    grep -o " $WORK/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2> /dev/null || true
    rm -rf "$WORK"
    [ $status = 0 ] || say "failed after $((SECONDS - START)) s"
    [ $status != 0 ] || say "cleaned up: $((SECONDS - START)) s in all"
}
trap cleanup EXIT

say "starting a private Docker engine in $WORK"
dockerd --bridge=none --iptables=false --ip6tables=false \
    --data-root "$WORK/data" --exec-root "$WORK/exec" -H "unix://$WORK/docker.sock" --pidfile "$WORK/docker.pid" \
    > "$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 120); do "${DOCKER[@]}" info > /dev/null 2>&1 && break; sleep 0.5; done
"${DOCKER[@]}" info > /dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; fail "dockerd did not start"; }

# pip's configuration on this machine (environment first, then its config files), for pip inside the build:
# the index URLs it reaches over the network, and the CA bundle it trusts (which goes into the base image).
pip_option() {
    local env_name="PIP_$(echo "$1" | tr 'a-z-' 'A-Z_')"
    if [ -n "${!env_name:-}" ]; then echo "${!env_name}"; else python3 -m pip config get "global.$1" 2> /dev/null || true; fi
}
network_urls() { tr ' ' '\n' | grep -E '^https?://' | paste -sd' ' || true; }
INDEX_URL=$(pip_option index-url | network_urls)
EXTRA_INDEX_URLS=$(pip_option extra-index-url | network_urls)
PIP_CA=$(pip_option cert)
[ -z "$PIP_CA" ] || [ -f "$PIP_CA" ] || PIP_CA=

# The base image: Debian bookworm's python3 (3.11) from its packages, made once per package list and CA bundle.
BASE_PACKAGES=python3,python3-venv,ca-certificates,libgomp1
BASE_KEY=$( { echo "$BASE_PACKAGES"; [ -z "$PIP_CA" ] || cat "$PIP_CA"; } | sha256sum | cut -c1-12)
BASE_TAR=$CACHE/base-bookworm-$BASE_KEY.tar
if [ ! -f "$BASE_TAR" ]; then
    say "making the base image from Debian's packages (debootstrap, once; cached in $CACHE)"
    mkdir -p "$CACHE"
    debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$WORK/rootfs" http://deb.debian.org/debian \
        > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
    [ -z "$PIP_CA" ] || cp "$PIP_CA" "$WORK/rootfs/etc/ssl/certs/pip-ca.pem"
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" -cf "$BASE_TAR.part" . && mv "$BASE_TAR.part" "$BASE_TAR"
    rm -rf "$WORK/rootfs"
fi
"${DOCKER[@]}" import "$BASE_TAR" facegate-smoke-base:bookworm > /dev/null

say "building the image (pip: index ${INDEX_URL:-default}, extra ${EXTRA_INDEX_URLS:-none})"
BUILD_START=$SECONDS
build_args=(--build-arg BASE_IMAGE=facegate-smoke-base:bookworm)
[ -z "$INDEX_URL" ] || build_args+=(--build-arg "PIP_INDEX_URL=$INDEX_URL")
[ -z "$EXTRA_INDEX_URLS" ] || build_args+=(--build-arg "PIP_EXTRA_INDEX_URL=$EXTRA_INDEX_URLS")
[ -z "$PIP_CA" ] || build_args+=(--build-arg PIP_CERT=/etc/ssl/certs/pip-ca.pem)
DOCKER_BUILDKIT=0 "${DOCKER[@]}" build -q --network host "${build_args[@]}" -t "$IMAGE" "$ROOT" > "$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; fail "docker build"; }
say "built in $((SECONDS - BUILD_START)) s"

# The embedded PostgreSQL in the image's /data volume; the weights read-only, as a deployment mounts them.
"${DOCKER[@]}" run -d --name "$CONTAINER" --network host --shm-size 256m \
    -e FACEGATE_PORT="$PORT" -e FACEGATE_EMBEDDED_SHARED_BUFFERS_MB=256 \
    -v "$WEIGHTS:/models:ro" -v facegate-smoke-data:/data "$IMAGE" > /dev/null
URL=http://127.0.0.1:$PORT
RUN_START=$SECONDS
until curl -sf "$URL/health/ready" > /dev/null; do
    running=$("${DOCKER[@]}" inspect -f '{{.State.Running}}' "$CONTAINER")
    if [ "$running" != true ] || [ $((SECONDS - RUN_START)) -gt "$READY_TIMEOUT" ]; then
        "${DOCKER[@]}" logs --tail 40 "$CONTAINER" 2>&1
        fail "not ready (running: $running, after $((SECONDS - RUN_START)) s)"
    fi
    sleep 2
done
say "ready $((SECONDS - RUN_START)) s after start (first start: ONNX files made, models loaded)"

uid=$("${DOCKER[@]}" exec "$CONTAINER" sh -c 'awk "/^Uid:/ {print \$2}" /proc/1/status')
[ "$uid" != 0 ] || fail "the service runs as root"
say "the service runs as uid $uid"

KEY=$("${DOCKER[@]}" exec "$CONTAINER" cat /data/admin-api-key.txt)
api() { curl -sS --fail-with-body -H "Authorization: Bearer $KEY" "$@"; }
enroll() {  # PERSON PHOTO...: sign PERSON up with those photos of them
    local person=$1 args=()
    shift
    for n in "$@"; do args+=(-F "file=@$LFW/$person/${person}_000$n.jpg"); done
    api -F "external_id=$person" -F "display_name=$person" "${args[@]}" "$URL/v1/members" > /dev/null
}
enroll Colin_Powell 1 2
enroll Tony_Blair 1 2
answer=$(api -F "file=@$LFW/Colin_Powell/Colin_Powell_0003.jpg" "$URL/v1/identify")
echo "$answer" | python3 -c '
import json, sys
face, = json.load(sys.stdin)["faces"]
match = face["match"] or {}
assert face["decision"] == "match" and match["external_id"] == "Colin_Powell", face
print("docker-smoke: identified Colin_Powell_0003.jpg as %s (distance %.3f)" % (match["external_id"], match["distance"]), file=sys.stderr)
' || fail "identify: $answer"

# What deploy/ sizes its memory and volumes from: the service's resident memory now and at its peak (the embedded
# PostgreSQL is apart), and what the first start wrote to /data besides the database.
"${DOCKER[@]}" exec "$CONTAINER" sh -c 'awk "/^VmRSS|^VmHWM/ {printf \"%s %d MB  \", \$1, \$2 / 1024}" /proc/1/status; du -sm /data/onnx | awk "{print \"/data/onnx \" \$1 \" MB\"}"' >&2 || true

size=$("${DOCKER[@]}" image inspect -f '{{.Size}}' "$IMAGE")
echo "image size: $((size / 1000000)) MB"
say "passed in $((SECONDS - START)) s"
