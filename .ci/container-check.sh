#!/usr/bin/env bash
# Runs inside ../shared/tools/container-sandbox.sh: build the image, bring the compose stack up,
# call it on loopback, check it listens on loopback only, and tear it down. Any failure fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PROPENSITY_PORT:-8000}
base="http://127.0.0.1:$port"
project=propensity-ci
compose() { docker compose -p "$project" "$@"; }
cleanup() {
  local status=$?
  if [[ $status != 0 ]]; then echo "-- api logs:"; compose logs --no-color --tail 50 api || true; fi
  compose down -v --remove-orphans >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== build and start (docker compose up -d --build --wait)"
compose up -d --build --wait
size=$(docker image inspect -f '{{.Size}}' propensity-service:latest)
echo "serving image: $((size / 1000000)) MB"

check() {  # check NAME EXPECTED-STATUS CURL-ARGS...
  local name=$1 want=$2; shift 2
  local got
  got=$(curl -s -o /tmp/ci-body -w '%{http_code}' "$@")
  echo "$name -> $got $(head -c 300 /tmp/ci-body)"
  [[ $got == "$want" ]] || { echo "FAIL: $name answered $got, expected $want" >&2; exit 1; }
}
check "GET /health/ready" 200 "$base/health/ready"
check "POST /predict" 200 -X POST "$base/predict" -H 'content-type: application/json' \
  -d '{"rows": [{"u_orders": 4, "i_price": 25.0, "i_category": "shoes", "ui_purchases": 1}, {}]}'
grep -q '"probability"' /tmp/ci-body
check "POST /models/uci_online_shoppers/predict" 200 -X POST "$base/models/uci_online_shoppers/predict" \
  -H 'content-type: application/json' -d '{"rows": [{"PageValues": 25.0, "Month": "Nov", "Browser": 2}]}'
check "POST /predict (bad input)" 422 -X POST "$base/predict" -H 'content-type: application/json' \
  -d '{"rows": [{"i_price": -1}]}'
default=$(curl -s "$base/health/ready" | python3 -c 'import json,sys; print(json.load(sys.stdin)["default"])')
if curl -s "$base/models" | python3 -c "import json,sys; sys.exit(0 if any(m['name']=='$default' and m['catalog_items'] for m in json.load(sys.stdin)) else 1)"; then
  check "POST /recommend" 200 -X POST "$base/recommend" -H 'content-type: application/json' \
    -d '{"user_id": "C00042", "k": 5}'
  grep -q '"cold_start":false' /tmp/ci-body
else
  check "POST /recommend (no catalogue in the default bundle)" 409 -X POST "$base/recommend" \
    -H 'content-type: application/json' -d '{"features": {}}'
fi

echo "== published on loopback only"
bindings=$(docker inspect -f '{{json .NetworkSettings.Ports}}' "$(compose ps -q api)")
echo "$bindings"
python3 - "$bindings" "$port" <<'PY'
import json, sys
ports = json.loads(sys.argv[1])["8000/tcp"]
hosts = {p["HostIp"] for p in ports}
assert hosts == {"127.0.0.1"}, f"published on {hosts}, not only 127.0.0.1"
assert {p["HostPort"] for p in ports} == {sys.argv[2]}
PY
if command -v ss >/dev/null; then
  ss -ltn | awk -v p=":$port" '$4 ~ p"$" {print "listening:", $4; if ($4 !~ /^127\.0\.0\.1:/) bad=1} END {exit bad}'
fi

echo "== runs as non-root with a read-only root filesystem"
cid=$(compose ps -q api)
[[ $(docker inspect -f '{{.Config.User}}' "$cid") != "" && $(docker exec "$cid" id -u) != 0 ]]
[[ $(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$cid") == true ]]
! docker exec "$cid" sh -c 'touch /srv/app/x' 2>/dev/null

echo "== time from 'docker compose up' to ready, image already built"
compose down >/dev/null 2>&1
start=$(date +%s.%N)
compose up -d --wait >/dev/null 2>&1
echo "up to ready: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"
check "GET /health/ready (after restart)" 200 "$base/health/ready"
echo "container checks passed"
