#!/usr/bin/env bash
# Proves that the tenant-scoping and audited-commit lints (clippy.toml `disallowed-methods`) can
# fail: clippy must reject every unscoped sea-orm call and every commit that bypasses `Db::commit`
# in tests/lint-fixtures/unscoped_query.rs. Exits 0 when it
# does, 1 when the fixture passes clippy (the rule is broken) or is rejected for another reason.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="$(cargo clippy -p runflow-api --example lint_unscoped_query --features lint-fixture --locked \
  --message-format short -- -D clippy::disallowed_methods 2>&1)"
status=$?
expected=17
found="$(grep -c 'error: use of a disallowed method' <<<"$out")"
if [ "$status" -ne 0 ] && [ "$found" -eq "$expected" ]; then
  echo "lint fixture: clippy rejected all $expected unscoped queries and unaudited commits, as it must"
  exit 0
fi
echo "$out"
echo "lint fixture: expected clippy to reject $expected unscoped queries and unaudited commits, it rejected $found (exit $status)" >&2
exit 1
