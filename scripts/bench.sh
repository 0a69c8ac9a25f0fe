#!/usr/bin/env bash
set -euo pipefail
echo "bench: TODO (scripts/bench.sh is not written yet)" >&2
exit 1
