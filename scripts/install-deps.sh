#!/usr/bin/env bash
# Installs the system tools the build needs when they are missing:
#   cmake            - grpcio-sys builds gRPC C-core with it (Debian's cmake 3.25;
#                      CMake 4 rejects the bundled c-ares)
#   protoc           - scripts/gen.sh compiles proto/ with it (Debian protobuf-compiler,
#                      which also ships the google/protobuf/*.proto well-known types)
#   redis            - the cluster tests and benchmarks start their own redis-server
#                      (Debian redis-server)
#   openssl          - grpcio-sys builds gRPC C-core's TLS against the system OpenSSL
#                      (Debian libssl-dev); the TLS tests make their certificates
#                      with the openssl command (Debian openssl)
#   promtool         - the Python interop suite checks a metrics scrape with
#                      `promtool check metrics` (Debian prometheus, which ships the
#                      Prometheus server too: on a machine running systemd its
#                      package enables and starts that server, on :9090)
# Usage: scripts/install-deps.sh [cmake] [protoc] [redis] [openssl] [promtool]
#        (no argument: cmake, protoc, redis and openssl)
set -euo pipefail

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(cmake protoc redis openssl)

packages=()
for tool in "${wanted[@]}"; do
  case "$tool" in
    cmake) command -v cmake >/dev/null 2>&1 || packages+=(cmake) ;;
    protoc)
      if ! command -v protoc >/dev/null 2>&1 || [ ! -f /usr/include/google/protobuf/timestamp.proto ]; then
        packages+=(protobuf-compiler libprotobuf-dev)
      fi
      ;;
    redis) command -v redis-server >/dev/null 2>&1 || packages+=(redis-server) ;;
    openssl)
      command -v openssl >/dev/null 2>&1 || packages+=(openssl)
      [ -f /usr/include/openssl/ssl.h ] || packages+=(libssl-dev)
      ;;
    promtool) command -v promtool >/dev/null 2>&1 || packages+=(prometheus) ;;
    *) echo "install-deps: unknown tool '$tool'" >&2; exit 2 ;;
  esac
done

[ ${#packages[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${packages[*]}" >&2; exit 1
  fi
fi
echo "install-deps: installing ${packages[*]} with apt-get" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
