#!/usr/bin/env bash
# Fails if generated/ differs from what scripts/gen.sh produces from proto/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/gen.sh
if ! git diff --exit-code --stat -- generated/ || [ -n "$(git status --porcelain -- generated/)" ]; then
  echo "check-generated: generated/ is out of date with proto/; run scripts/gen.sh and commit the result" >&2
  git status --short -- generated/ >&2
  exit 1
fi
echo "check-generated: generated/ matches proto/"
