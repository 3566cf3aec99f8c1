#!/usr/bin/env bash
# The /admin browser test drives Debian's Chromium through Playwright (Playwright's own browser download needs the
# internet). Idempotent: does nothing when /usr/bin/chromium is there; otherwise installs the `chromium` package.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
echo "Installing Debian's chromium for the browser test" >&2
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
[ -x "$CHROMIUM" ] || { echo "apt-get installed chromium but $CHROMIUM is missing" >&2; exit 1; }
