# Sourced by run.sh and lint.sh: installs node_modules with `npm ci` when it
# is missing or was installed from another package.json / package-lock.json.
# The hash of both files is kept in node_modules/.installed-from.

ensure_node_deps() {
  local dir stamp want
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  stamp="$dir/node_modules/.installed-from"
  if command -v sha256sum >/dev/null; then
    want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
  else
    want="$(cat "$dir/package.json" "$dir/package-lock.json" | shasum -a 256 | cut -d' ' -f1)"
  fi
  if [[ -d "$dir/node_modules" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  # No install scripts are needed: @bufbuild/buf's bin/buf finds the binary
  # of its platform package by itself.
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) || return 1
  echo "$want" >"$stamp"
}
