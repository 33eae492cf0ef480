#!/usr/bin/env bash
# Everything CI runs, in order: tools, build, policy checks, unit tests, end-to-end
# tests against a real kube-apiserver. Each suite runs even if an earlier one
# failed, so one run shows every failure; the exit code is non-zero if any did.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/system-deps.sh || exit 1
bash scripts/tools.sh || exit 1
bash scripts/tools.sh helm || exit 1
bash scripts/tools.sh mcp-go-client || exit 1
npx tsc -p tsconfig.json || exit 1

failed=0
step() {
  local name=$1; shift
  printf '\n== %s\n' "$name"
  if ! "$@"; then
    printf '== %s FAILED\n' "$name"
    failed=1
  fi
}

if find policies -name '*.rego' | grep -q .; then
  # What a policy author runs: opa fmt, opa check --strict against the input's schema (a misspelt input
  # field is a type error instead of a rule that never matches), opa test, and the fixtures through the
  # compiled WASM the gateway runs. -v: each Rego test by name.
  step 'opa test -v' .tools/opa test -v policies
  step 'gatehouse policy test' node bin/gatehouse.js policy test policies
fi
# Types, typescript-eslint (strictTypeChecked) and Prettier: npm run lint.
step 'lint' npm run --silent lint
step 'unit tests' npx mocha --config test/.mocharc.unit.json
step 'end-to-end tests' npx mocha --config test/.mocharc.e2e.json
# Short benchmarks: they fail only on a crash or a malformed result, never on a timing.
step 'benchmarks (quick)' node dist/bench/run.js --quick
step 'scale-out benchmark (quick)' node dist/bench/ha.js --quick
step 'MCP benchmark (quick)' node dist/bench/mcp.js --quick
step 'policy replay benchmark (quick)' node dist/bench/replay.js --quick

exit $failed
