#!/usr/bin/env bash
# Property-based API test: schemathesis generates requests from openapi.yaml and checks the
# answers of the real service (`--demo`, with its built-in Darktrace simulator, on a loopback
# port) against the spec: no 5xx other than the documented ones, documented statuses,
# content types, headers and response schemas. First, openapi-spec-validator checks that the
# document itself is valid OpenAPI 3.1, so client generators accept it.
#
#   scripts/schemathesis.sh                 # 20 examples per operation
#   SCHEMATHESIS_MAX_EXAMPLES=200 scripts/schemathesis.sh
#
# Installs schemathesis from PyPI into target/schemathesis-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
VALIDATOR_VERSION=0.9.0
VENV=target/schemathesis-venv
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-20}"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi
if ! "$VENV/bin/pip" show openapi-spec-validator 2>/dev/null | grep -q "^Version: $VALIDATOR_VERSION$"; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator==$VALIDATOR_VERSION"
fi
"$VENV/bin/openapi-spec-validator" openapi.yaml

cargo build --locked --quiet --bin darktrace-export
BIN=target/debug/darktrace-export
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"

LOG=$(mktemp)
LOG_FORMAT=text "$BIN" --demo --listen-addr "127.0.0.1:$PORT" >"$LOG" 2>&1 &
SERVICE=$!
trap 'kill "$SERVICE" 2>/dev/null || true; wait "$SERVICE" 2>/dev/null || true; rm -f "$LOG"' EXIT

for _ in $(seq 1 100); do
    "$BIN" healthcheck --url "$BASE/healthz" 2>/dev/null && break
    kill -0 "$SERVICE" 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
done
"$BIN" healthcheck --url "$BASE/healthz"

# Operations the spec documents ahead of their handlers (src/http/routes.rs NOT_YET_SERVED)
# answer 404 here; the Rust route tests pin that list, so they are left out of this run.
mapfile -t EXCLUDE < <("$VENV/bin/python" - "$BASE" <<'PY'
import sys, urllib.request, urllib.error, yaml
base = sys.argv[1]
spec = yaml.safe_load(open("openapi.yaml"))
for path, item in spec["paths"].items():
    for method in item:
        request = urllib.request.Request(base + path, method=method.upper())
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                print("--exclude-path=" + path)
PY
)
if [ "${#EXCLUDE[@]}" -gt 0 ]; then
    echo "not yet served, left out: ${EXCLUDE[*]}"
fi

# negative_data_rejection and positive_data_acceptance are left out on purpose: the service
# reads ThreatQ objects leniently (an item the schema calls malformed is answered `invalid`,
# not refused), so "the schema forbids it" does not mean "the service must answer 4xx".
# Run from target/, where schemathesis keeps its cache of past failures.
cd target
"../$VENV/bin/schemathesis" run ../openapi.yaml \
    --url "$BASE" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --phases examples,coverage,fuzzing \
    --header "Authorization: Bearer demo" \
    --request-timeout 30 \
    --workers 1 \
    --no-color \
    "${EXCLUDE[@]}"
