#!/usr/bin/env bash
# Regenerates the Rust stubs in generated/src/ from proto/.
#
#   protoc (Debian protobuf-compiler)
#   + protoc-gen-rs     from protobuf-codegen  (messages, --rs_out)
#   + grpc_rust_plugin  from grpcio-compiler   (service stubs, --grpc_out)
#
# The plugins are pinned and installed into $CHAT_TOOLS_DIR (default
# ~/.cache/chat-tools) when missing. The output is deterministic: running this
# twice gives the same files, and `make check-generated` relies on that.
set -euo pipefail

PROTOBUF_CODEGEN_VERSION=3.7.2
GRPCIO_COMPILER_VERSION=0.13.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools=${CHAT_TOOLS_DIR:-$HOME/.cache/chat-tools}
out="$root/generated/src"

# cmake too: `scripts/gen.sh` then `cargo run` is a documented first flow,
# and grpcio-sys needs cmake to build.
"$root/scripts/install-deps.sh" protoc cmake

# install_plugin CRATE VERSION BINARY
install_plugin() {
  local crate=$1 version=$2 binary=$3 stamp="$tools/.$1-$2"
  if [ -x "$tools/bin/$binary" ] && [ -f "$stamp" ]; then
    return
  fi
  echo "gen.sh: installing $crate $version into $tools" >&2
  # Build the plugin in its own target dir so it never touches the project's.
  CARGO_TARGET_DIR="$tools/target" cargo install --quiet --locked --force \
    --root "$tools" "$crate" --version "=$version" --bin "$binary"
  touch "$stamp"
}
install_plugin protobuf-codegen "$PROTOBUF_CODEGEN_VERSION" protoc-gen-rs
install_plugin grpcio-compiler "$GRPCIO_COMPILER_VERSION" grpc_rust_plugin

# The well-known types (google/protobuf/timestamp.proto) ship with protoc.
wkt_include=/usr/include

# generate PROTO DEST: compiles one .proto into DEST (relative to
# generated/src). Each file gets its own run because protoc-gen-rs names its
# output after the file's stem: the two reflection.proto would collide.
generate() {
  local proto=$1 dest="$out/$2" scratch
  scratch=$(mktemp -d)
  protoc \
    --plugin=protoc-gen-rs="$tools/bin/protoc-gen-rs" \
    --plugin=protoc-gen-grpc="$tools/bin/grpc_rust_plugin" \
    -I "$root/proto" -I "$wkt_include" \
    --rs_out="$scratch" --grpc_out="$scratch" \
    "$proto"
  # protoc-gen-rs also writes a mod.rs; generated/src/lib.rs declares the
  # modules instead, so only the per-file outputs are kept.
  rm -f "$scratch/mod.rs"
  mkdir -p "$dest"
  cp "$scratch"/*.rs "$dest/"
  echo "gen.sh: $proto -> generated/src/${2:+$2/}$(cd "$scratch" && ls *.rs | tr '\n' ' ')" >&2
  rm -rf "$scratch"
}

generate chat/v1/chat.proto ""
generate chat/admin/v1/admin.proto ""
generate grpc/health/v1/health.proto ""
generate grpc/reflection/v1/reflection.proto reflection_v1
generate grpc/reflection/v1alpha/reflection.proto reflection_v1alpha
