#!/usr/bin/env bash
# The Debian packages the tests use, installed with apt-get (as root) when missing: the one
# place the project calls apt-get. `make test` runs it (make system-deps); `--help` says more.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/system-deps.sh [GROUP...]

Installs with apt-get (as root) the Debian packages of each GROUP that are missing;
does nothing when all are there. No GROUP: browser and prometheus (what `make test` needs).

Groups:
  browser     chromium, fonts-noto-cjk, fontconfig: the browser tests drive Debian's
              Chromium (never a downloaded browser), with Noto CJK so that names such as
              露露 render as characters in the screenshots            (make browser)
  prometheus  prometheus: the metrics test scrapes with Debian's Prometheus  (make prometheus)
  compose     docker.io, debootstrap: only for docker-compose.yml run for real
              (make compose-test, make compose-prep)                    (make docker-engine)
EOF
}

groups=()
for arg in "$@"; do
  case $arg in
    -h | --help) usage; exit 0 ;;
    browser | prometheus | compose) groups+=("$arg") ;;
    *) echo "system-deps: unknown group: $arg (--help lists them)" >&2; exit 2 ;;
  esac
done
[ ${#groups[@]} -gt 0 ] || groups=(browser prometheus)

has() { command -v "$1" >/dev/null 2>&1; }

# Two installs, as before: with Debian's recommended packages, and without them.
recommended=()
bare=()
for group in "${groups[@]}"; do
  case $group in
    browser)
      has chromium || recommended+=(chromium)
      # grep reads to the end: with pipefail, grep -q could leave fc-list a SIGPIPE.
      fc-list 2>/dev/null | grep "Noto Sans CJK" >/dev/null || bare+=(fonts-noto-cjk fontconfig)
      ;;
    prometheus)
      has prometheus || bare+=(prometheus)
      ;;
    compose)
      has dockerd && has debootstrap || recommended+=(docker.io debootstrap)
      ;;
  esac
done

[ ${#recommended[@]} -gt 0 ] || [ ${#bare[@]} -gt 0 ] || exit 0
apt-get update -q
[ ${#recommended[@]} -eq 0 ] || apt-get install -y -q "${recommended[@]}"
[ ${#bare[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends "${bare[@]}"
