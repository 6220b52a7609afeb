#!/usr/bin/env bash
# Proves the compose deployment on a machine whose Docker Engine cannot pull images: builds the images from
# local parts (Debian bookworm made with debootstrap and `docker import`, PostgreSQL 15 from Debian's package,
# the services' release binaries built on this host), brings up the real docker-compose.yml, and checks from
# outside the containers that classification works, that the registry refuses calls without a token, that no
# acknowledged write is lost when the registry is killed, and that writes made while the classifier is stopped
# are classified once it is back.
# Tears everything down whatever happens. Base images are cached: the second run skips debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
  echo "SKIPPED: no Docker Engine answers here (docker info failed); the compose deployment was not checked."
  exit 0
fi
COMPOSE=${COMPOSE:-docker-compose}
if ! command -v "${COMPOSE%% *}" >/dev/null 2>&1; then
  COMPOSE="docker compose"
fi

cache=${XDG_CACHE_HOME:-$HOME/.cache}/township-registry/images
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"
work=$(mktemp -d)
project=township-proof-$$
export POSTGRES_PASSWORD
POSTGRES_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
export IMAGE_PREFIX=township IMAGE_TAG=proof PUBLISH_HOST=127.0.0.1 REGISTRY_MAX_BACKOFF_SECONDS=2
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
CLASSIFIER_PORT=$(free_port)
REGISTRY_PORT=$(free_port)
export CLASSIFIER_PORT REGISTRY_PORT
compose() { $COMPOSE -p "$project" -f docker-compose.yml -f deploy/compose.local.yml "$@"; }

cleanup() {
  local status=$?
  if [ "$status" != 0 ]; then
    echo "--- logs (the proof failed) ---"
    compose logs --no-color --tail=40 2>/dev/null || true
  fi
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }

# --- base images from local parts ---------------------------------------------------------------------------

# debootstrap_image NAME TARBALL [PACKAGES...]: a Debian bookworm minbase root file system with PACKAGES,
# cached as a tarball and imported as image NAME.
debootstrap_image() {
  local name=$1 label=$2 tarball=$cache/$2
  shift 2
  if docker image inspect "$name" >/dev/null 2>&1; then
    echo "$name: present"
    return
  fi
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq debootstrap; }
    local root=$work/rootfs-$label
    echo "$name: debootstrap bookworm from $mirror..."
    debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log"; return 1; }
    if [ "$#" -gt 0 ]; then
      # No service may start inside the chroot.
      printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
      chmod 755 "$root/usr/sbin/policy-rc.d"
      chroot "$root" apt-get install -y -qq --no-install-recommends "$@" >"$work/apt.log" 2>&1 \
        || { tail -20 "$work/apt.log"; return 1; }
      rm -f "$root/usr/sbin/policy-rc.d"
    fi
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
    tar -C "$root" -c . >"$tarball.tmp" && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  docker import "$tarball" "$name" >/dev/null
  echo "$name: imported from $tarball"
}

step "base images (cached in $cache)"
debootstrap_image township-local/debian:bookworm debian-bookworm.tar
debootstrap_image township-local/postgres-rootfs:15 postgres-15-bookworm.tar postgresql-15
docker build -q -t township-local/postgres:15 deploy/local-images/postgres >/dev/null
echo "township-local/postgres:15: built"

step "release binaries (host) and the service images"
cargo build --release --locked -p township-classifier -p township-registry
cargo build --release --locked -p township-e2e --bin deploy-check
cargo build --release --locked -p townctl

step "a development PKI for the deployment's TLS (production mounts the city's own certificates)"
export PKI_DIR="$work/pki"
target/release/townctl pki init "$PKI_DIR"
# The services run as uid 10001 and read their keys from the read-only mount.
chown -R 10001:10001 "$PKI_DIR"

step "the token secrets: a signing key, the registry's public key directory, an administrator's token"
export AUTH_DIR="$work/auth"
target/release/townctl token init "$AUTH_DIR"
# Only the public keys enter the container (read by uid 10001); the signing key and tokens stay on the host.
chown -R 10001:10001 "$AUTH_DIR/keys"

for target in classifier registry; do
  docker build -q --target "$target" -t "township/$target:proof" \
    --build-arg BUILD_IMAGE=township-local/debian:bookworm \
    --build-arg RUNTIME_IMAGE=township-local/debian:bookworm \
    --build-arg PREBUILT=1 . >/dev/null
  echo "township/$target:proof: built"
done
check() {
  target/release/deploy-check --registry "https://127.0.0.1:$REGISTRY_PORT" --ca-cert "$PKI_DIR/ca.pem" \
    --token-file "$AUTH_DIR/admin.token" "$@"
}

# wait_healthy SERVICE...: until every service's container reports healthy.
wait_healthy() {
  local deadline=$((SECONDS + 180)) service id health
  for service in "$@"; do
    while true; do
      id=$(compose ps -q "$service")
      health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null || echo missing)
      [ "$health" = healthy ] && break
      [ "$SECONDS" -lt "$deadline" ] || { echo "$service is $health after 180 s" >&2; return 1; }
      sleep 0.5
    done
  done
}

step "docker-compose up (project $project; classifier on 127.0.0.1:$CLASSIFIER_PORT, registry on 127.0.0.1:$REGISTRY_PORT)"
started=$(date +%s.%N)
compose up -d --no-build
wait_healthy postgres classifier registry
healthy_after=$(python3 -c "print(f'{$(date +%s.%N) - $started:.1f}')")
echo "all three healthy after $healthy_after s"

step "classification through the containers"
check seed --code-prefix 4301

step "TLS: plaintext to the registry's port gets no answer; the classifier refuses a caller without a certificate"
if target/release/deploy-check --registry "http://127.0.0.1:$REGISTRY_PORT" cohort-state >/dev/null 2>&1; then
  echo "a plaintext call to the registry succeeded" >&2; exit 1
fi
townctl_status() {
  # From $work, so that no data/pki of this checkout is picked up as a default.
  (cd "$work" && "$OLDPWD/target/release/townctl" --classifier "https://127.0.0.1:$CLASSIFIER_PORT" \
    --registry "https://127.0.0.1:$REGISTRY_PORT" --ca-cert "$PKI_DIR/ca.pem" \
    --token-file "$AUTH_DIR/admin.token" "$@" status)
}
townctl_status --client-cert "$PKI_DIR/registry-client.pem" --client-key "$PKI_DIR/registry-client.key" >/dev/null
if townctl_status >/dev/null 2>&1; then
  echo "the classifier answered a caller without a client certificate" >&2; exit 1
fi
echo "plaintext refused; the classifier answers the registry's certificate and refuses a caller without one"

step "authentication: the registry refuses a call without a token through the published port"
target/release/deploy-check --registry "https://127.0.0.1:$REGISTRY_PORT" --ca-cert "$PKI_DIR/ca.pem" \
  expect-unauthenticated

step "the services run as a non-root user"
for service in classifier registry; do
  uid=$(docker exec "$(compose ps -q "$service")" id -u)
  echo "$service runs as uid $uid"
  [ "$uid" != 0 ] || { echo "$service runs as root" >&2; exit 1; }
done

step "kill the registry while writing: no acknowledged write is lost"
check write-loop --tag kill --count 100000 >"$work/acked-kill" 2>"$work/write-kill.err" &
writer=$!
sleep 5
compose kill registry
wait "$writer" || true
killed_acked=$(grep -c '^acked ' "$work/acked-kill" || true)
echo "writes acknowledged before the kill: $killed_acked ($(tail -1 "$work/write-kill.err"))"
# The loop stops at its first refused write, so a write that fails for any reason but the kill (a deadlock
# answered as INTERNAL, say) shows up as a short run.
[ "$killed_acked" -ge 30 ] || { echo "only $killed_acked writes acknowledged in 5 s before the kill" >&2; exit 1; }
compose start registry
wait_healthy registry
check verify --acked-file "$work/acked-kill"

step "stop the classifier, keep writing, start it: the backlog drains"
compose stop classifier
check write-loop --tag outage --count 40 >"$work/acked-outage"
outage_acked=$(grep -c '^acked ' "$work/acked-outage" || true)
state=$(check cohort-state)
echo "writes acknowledged while the classifier was stopped: $outage_acked; cohort is $state"
[ "$outage_acked" -eq 40 ] || { echo "expected all 40 writes acknowledged with the classifier down" >&2; exit 1; }
[ "$state" = COHORT_STATE_PENDING ] || { echo "expected the cohort PENDING while the classifier is down" >&2; exit 1; }
compose start classifier
wait_healthy classifier
check wait-current --timeout-seconds 180
check verify --acked-file "$work/acked-outage"

step "figures"
echo "time to healthy (postgres, classifier, registry): $healthy_after s"
echo "writes acknowledged before the registry was killed: $killed_acked, all found after restart"
echo "writes acknowledged while the classifier was stopped: $outage_acked, all found and classified"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^township(-local)?/' | sort
echo "COMPOSE PROOF PASSED"
