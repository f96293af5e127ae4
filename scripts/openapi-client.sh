#!/usr/bin/env bash
# Checks that a client generator takes every schema of openapi.yaml: openapi-python-client
# generates a client, and no schema may be reported "Unable to process schema" (it then
# drops the schema from the client it writes).
#
# Installs openapi-python-client from PyPI into target/openapi-client-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.29.1
VENV=target/openapi-client-venv
if ! "$VENV/bin/pip" show openapi-python-client 2>/dev/null | grep -q "^Version: $VERSION$"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "openapi-python-client==$VERSION"
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
LOG="$OUT/generate.log"
(cd "$OUT" && "$OLDPWD/$VENV/bin/openapi-python-client" generate --path "$OLDPWD/openapi.yaml" --overwrite) >"$LOG" 2>&1
if grep -q "Unable to process schema" "$LOG"; then
    grep -A4 "Unable to process schema" "$LOG" >&2
    echo "openapi-python-client could not process every schema of openapi.yaml" >&2
    exit 1
fi
echo "openapi-python-client: every schema of openapi.yaml generated"
