#!/usr/bin/env bash
# Mutation testing of htr's core (issue 16): mutmut mutates htr/decode, metrics, charset, preprocess and the
# manifest/PAGE/ALTO readers ([tool.mutmut] in pyproject.toml) and runs the tests that cover each mutant.
# Outside the normal suite: about an hour on 2 busy cores. Scores per module: docs/testing.md.
#   scripts/mutation.sh                      # every module
#   scripts/mutation.sh "htr.decode*"        # mutants whose names match (module globs)
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip show mutmut >/dev/null 2>&1 || python -m pip install -q "mutmut>=3.3"
nice -n 19 python -m mutmut run --max-children "${MUTMUT_CHILDREN:-1}" "$@" >/dev/null || true
python scripts/mutation_score.py
