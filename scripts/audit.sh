#!/usr/bin/env bash
# Offline dependency audit of Cargo.lock with cargo-deny: RustSec advisories,
# licenses, bans and sources, as configured in deny.toml at the repo root.
#
# This machine (and CI) cannot reach the RustSec advisory database online, so
# cargo-deny runs with --offline against a snapshot of it:
#   - $ADVISORY_DB, when set: a directory holding the database (its crates/
#     folder). An explicitly given path that is missing or is not a database
#     is an error (exit 1): a typo in CI must not turn the audit into a skip.
#   - otherwise ../shared/advisory-db relative to the repo root, if it exists.
#   - otherwise there is no database: the advisories check is SKIPPED with a
#     loud notice and the script exits 0. That is not a pass: with no network
#     and no snapshot there is nothing to check against. The licenses, bans and
#     sources checks need no database and still run (their findings fail).
#
# cargo-deny opens the database as a git repository found at
# <db-path>/advisory-db-3157b0e258782691 (the folder name it derives from the
# default database URL). A plain snapshot (data only) is copied to a scratch
# db-path (${CHAT_ADVISORY_DB_ROOT:-${TMPDIR:-/tmp}/chat-advisory-db}) and
# committed there once; later runs reuse it while the snapshot is unchanged. A
# snapshot that already is a git clone is linked there as it is. deny.toml's
# [advisories] db-path reads CHAT_ADVISORY_DB_ROOT, which this script exports.
#
# The scratch commit is dated with the newest advisory date in the snapshot
# (the snapshot has no git history of its own), so cargo-deny's staleness
# check (maximum-db-staleness in deny.toml) measures the age of the data, not
# the age of the copy.
#
# cargo-deny itself is installed once (pinned version, built from crates.io)
# into ${CHAT_TOOLS_DIR:-$HOME/.cache/chat-tools}; that first build takes
# 6-8 minutes on a 2-core machine.
#
# Exit status: 0 when every check that ran passed (or advisories were skipped
# as above), 1 on any finding or error.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cargo=${CARGO:-cargo}
deny_version=0.20.2
tools=${CHAT_TOOLS_DIR:-$HOME/.cache/chat-tools}
# Must match cargo-deny's folder name for https://github.com/RustSec/advisory-db.
db_folder=advisory-db-3157b0e258782691
export CHAT_ADVISORY_DB_ROOT=${CHAT_ADVISORY_DB_ROOT:-${TMPDIR:-/tmp}/chat-advisory-db}

die() { echo "audit: error: $*" >&2; exit 1; }

skip_notice() {
  cat >&2 <<'EOF'

############################################################################
##  AUDIT SKIPPED: no advisory database available.
##
##  The RustSec advisories check did NOT run. This is NOT a pass.
##  This machine has no network access to the RustSec advisory database,
##  and neither $ADVISORY_DB nor ../shared/advisory-db provides a snapshot.
##  Point ADVISORY_DB at a copy of the database (a directory with crates/)
##  to run it. Licenses, bans and sources are checked all the same.
############################################################################

EOF
}

# --- cargo-deny -------------------------------------------------------------
deny_bin=$tools/bin/cargo-deny
if [ ! -x "$deny_bin" ] || [ "$("$deny_bin" --version 2>/dev/null || true)" != "cargo-deny $deny_version" ]; then
  echo "audit: installing cargo-deny $deny_version into $tools (one-time build, 6-8 minutes)" >&2
  started=$SECONDS
  mkdir -p "$tools"
  CARGO_TARGET_DIR="$tools/build/cargo-deny" \
    "$cargo" install --locked --force --root "$tools" --version "=$deny_version" cargo-deny
  echo "audit: cargo-deny $deny_version installed in $((SECONDS - started))s" >&2
fi
export PATH="$tools/bin:$PATH"

# --- advisory database ------------------------------------------------------
db_src=""
if [ -n "${ADVISORY_DB:-}" ]; then
  [ -d "$ADVISORY_DB" ] || die "ADVISORY_DB=$ADVISORY_DB does not exist (unset ADVISORY_DB to use ../shared/advisory-db)"
  db_src=$ADVISORY_DB
elif [ -d "$root/../shared/advisory-db" ]; then
  db_src=$root/../shared/advisory-db
fi
if [ -n "$db_src" ]; then
  db_src=$(cd "$db_src" && pwd -P)
  [ -d "$db_src/crates" ] || die "$db_src is not a RustSec advisory database (no crates/ folder)"
fi

db_label=""
if [ -n "$db_src" ]; then
  mkdir -p "$CHAT_ADVISORY_DB_ROOT"
  db_dir=$CHAT_ADVISORY_DB_ROOT/$db_folder
  if [ -e "$db_src/.git" ]; then
    # Already a git clone: use it as it is (its own commit dates count).
    if [ "$(readlink "$db_dir" 2>/dev/null || true)" != "$db_src" ]; then
      rm -rf "$db_dir"
      ln -s "$db_src" "$db_dir"
    fi
    db_label="commit $(git -C "$db_src" log -1 --format='%h of %cs')"
  else
    # A data-only snapshot: copy it and commit it once per distinct content.
    fingerprint=$(cd "$db_src" && find . -type f -print0 | LC_ALL=C sort -z |
      xargs -0 sha256sum | sha256sum | cut -c1-12)
    newest=$(grep -rhoE '^date = "[0-9]{4}-[0-9]{2}-[0-9]{2}"' "$db_src/crates" |
      grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' | LC_ALL=C sort | tail -n 1)
    [ -n "$newest" ] || die "no dated advisory found under $db_src/crates"
    if [ -L "$db_dir" ] || [ "$(cat "$db_dir/.git/chat-snapshot" 2>/dev/null || true)" != "$fingerprint" ]; then
      echo "audit: preparing advisory db snapshot $fingerprint from $db_src" >&2
      tmp=$CHAT_ADVISORY_DB_ROOT/.prepare.$$
      rm -rf "$tmp"
      cp -R "$db_src" "$tmp"
      chmod -R u+w "$tmp"
      stamp="${newest}T00:00:00Z"
      (
        cd "$tmp"
        git init -q -b main
        git add -A
        GIT_AUTHOR_DATE=$stamp GIT_COMMITTER_DATE=$stamp \
          git -c user.name=chat-audit -c user.email=chat-audit@localhost \
          -c commit.gpgsign=false -c core.hooksPath=/dev/null commit -q -m "RustSec advisory-db snapshot $fingerprint (newest advisory $newest)"
        echo "$fingerprint" >.git/chat-snapshot
        # cargo-deny takes the newer of the HEAD commit date and .git/HEAD's
        # mtime as the database's update time: date both to the data.
        touch -d "$stamp" .git/HEAD
      )
      rm -rf "$db_dir"
      mv -T "$tmp" "$db_dir" 2>/dev/null || rm -rf "$tmp" # lost a race: theirs is as good
    fi
    count=$(find "$db_src/crates" -name 'RUSTSEC-*.md' | wc -l)
    db_label="snapshot $fingerprint, $count crate advisories, newest $newest"
  fi
else
  skip_notice
fi

# --- checks -----------------------------------------------------------------
# The audit is of Cargo.lock as it stands: --locked, so nothing re-resolves it
# (a stale lock fails here). --workspace: every member (bench, client, generated
# too, with their dev-dependencies) is a root of the graph, whichever package
# cargo metadata would otherwise pick as the root.
"$cargo" fetch --locked --quiet

checks=(licenses bans sources)
if [ -n "$db_src" ]; then checks=(advisories "${checks[@]}"); fi

summary=()
failed=0
for check in "${checks[@]}"; do
  if "$cargo" deny --locked --offline --workspace check "$check"; then
    summary+=("$check ok")
  else
    summary+=("$check FAILED")
    failed=1
    if [ "$check" = advisories ]; then
      echo "audit: advisories failed. A RUSTSEC id above is a finding: upgrade the crate (see its" >&2
      echo "       Solution line). 'repository is stale' means the snapshot is older than" >&2
      echo "       maximum-db-staleness in deny.toml: refresh the advisory-db snapshot." >&2
    fi
  fi
done

line=$(printf '%s, ' "${summary[@]}")
line=${line%, }
if [ -n "$db_src" ]; then
  echo "audit: $line (advisory db $db_label)"
else
  skip_notice # again, so that the end of a long log shows it too
  echo "audit: advisories SKIPPED (no advisory database: not a pass), $line"
fi
exit "$failed"
