#!/usr/bin/env bash
# Runs the Python interop tests against the real chat-server binary.
#
#   tests/interop/python/run.sh [pytest arguments...]
#
# 1. Makes a virtualenv in tests/interop/python/.venv from requirements.txt
#    (reused while requirements.txt and the Python version are unchanged).
# 2. Generates the Python stubs for proto/chat/v1/chat.proto and
#    proto/chat/admin/v1/admin.proto into tests/interop/python/.gen/
#    (git-ignored; regenerated on every run).
# 3. Runs pytest; its summary line is the last line printed.
#
# The server binary is $CHAT_SERVER_BIN, by default
# ${CARGO_TARGET_DIR:-<repo>/target}/debug/chat-server; build it first with
# `cargo build --bin chat-server`.
#
# Exits non-zero when a test fails, when no test ran, or when the setup fails.
# Needs only python3 (and pip's registry); on Debian, a missing python3-venv
# is installed with apt-get when running as root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="$here/.venv"
gen="$here/.gen"
stamp="$venv/.requirements.sha256"
# The longest the pytest run may take before it is stopped.
suite_limit_seconds="${CHAT_INTEROP_TIMEOUT:-300}"

say() { echo "run.sh: $*" >&2; }

# Paths the caller gave relative to its working directory stay valid after
# the cd below.
absolute() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$PWD/$1" ;;
  esac
}
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  CARGO_TARGET_DIR="$(absolute "$CARGO_TARGET_DIR")"
  export CARGO_TARGET_DIR
fi
if [[ -n "${CHAT_SERVER_BIN:-}" ]]; then
  CHAT_SERVER_BIN="$(absolute "$CHAT_SERVER_BIN")"
  export CHAT_SERVER_BIN
fi

if ! command -v python3 >/dev/null 2>&1; then
  say "python3 is required"
  exit 1
fi

# Debian ships venv's ensurepip in a separate package.
ensure_venv_module() {
  if python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    return 0
  fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "python3 cannot make a virtualenv; installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq python3-venv >&2
  fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    say "python3 cannot make a virtualenv: install the python3-venv package"
    exit 1
  fi
}

# What the virtualenv was made from: the requirements and the interpreter.
wanted="$( { cat "$here/requirements.txt"; python3 -c 'import sys; print(sys.version)'; } \
  | sha256sum | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" ]] \
  || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1 \
  || [[ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]]; then
  ensure_venv_module
  say "making the virtualenv in $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$here/requirements.txt" >&2
  # Written last: a failed install is retried on the next run.
  echo "$wanted" >"$stamp"
fi

# Fresh stubs every run, so they always match the proto.
rm -rf "$gen"
mkdir -p "$gen"
(
  cd "$repo/proto"
  "$venv/bin/python" -m grpc_tools.protoc -I . \
    --python_out="$gen" --grpc_python_out="$gen" \
    chat/v1/chat.proto chat/admin/v1/admin.proto
)

cd "$here"
export PYTHONDONTWRITEBYTECODE=1
export CHAT_INTEROP_GEN="$gen"
status=0
timeout --foreground --kill-after=10 "$suite_limit_seconds" \
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" || status=$?
case "$status" in
  0) ;;
  5) say "no tests ran"; exit 1 ;;
  124 | 137) say "the test run took longer than ${suite_limit_seconds}s and was stopped"; exit 1 ;;
  *) exit "$status" ;;
esac
