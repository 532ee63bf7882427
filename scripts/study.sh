#!/usr/bin/env bash
# The README's main command: set up .venv if needed, then run the whole study on the embedded
# model (fine-tune to report), reusing every finished step. Extra arguments go to `interp study`
# (e.g. --dry-run, --only 12). The authors' published data, when it sits beside the checkout
# (../shared/data/warm_ai_2025) or is named by INTERP_PAPER_DATA, is redrawn beside our results.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
PAPER_DATA="${INTERP_PAPER_DATA:-$ROOT/../shared/data/warm_ai_2025}"
extra=()
if [ -d "$PAPER_DATA" ]; then extra=(--paper-data "$PAPER_DATA"); fi
exec interp study --preset embedded "${extra[@]}" "$@"
