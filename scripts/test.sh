#!/usr/bin/env bash
# The whole test suite, installing what it needs into the active Python environment:
# Node tools (npm ci: solc-js, OpenZeppelin, anvil, solhint), the package with its dev extra,
# then the artifact check, static analysis of the contracts, and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

npm ci --no-audit --no-fund --loglevel=error
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# slither pins web3<8, so it gets a virtualenv of its own (git-ignored under .venv/).
if [ ! -x .venv/slither/bin/slither ]; then
  "$PYTHON" -m venv .venv/slither
  .venv/slither/bin/pip install --quiet --disable-pip-version-check slither-analyzer==0.11.6
fi

echo "== ruff (pyflakes) over the Python code"
"$PYTHON" -m ruff check chain cli scripts tests
echo "== artifacts: committed ABI/bytecode must match contracts/"
"$PYTHON" scripts/compile.py --check
echo "== static analysis: slither (fails on high severity) and solhint"
"$PYTHON" scripts/lint_contracts.py
echo "== pytest (one worker per core; each worker starts its own anvil and IPFS daemon)"
# loadfile: a module's tests run on one worker, in order, so a module fixture is built once and
# tests that build on one another's state (the pool's fund -> claim -> sweep) see it.
"$PYTHON" -m pytest -n "${FULLCHAIN_TEST_WORKERS:-auto}" --dist loadfile --durations=20 "$@"
