#!/bin/sh
# Sentiment and topics of every row of feedback.csv, as JSON checked against a JSON Schema: the
# request body asks the model for that schema (sentiment-body.json), and --output-schema checks every
# answer against it (a mismatch is retried), then each field becomes a column (--expand).
# On the built-in local backend (no key; its answers are synthetic but schema-valid). For OpenAI, drop
# --backend local and set OPENAI_API_KEY.
#   sh examples/sentiment.sh [OUT_DIR]      → OUT_DIR/sentiment.csv (default: runs/)
set -eu
here=$(dirname "$0")
# `batchpipe` on PATH (npm install -g batchpipe, npm link), or this clone's own.
command -v batchpipe >/dev/null 2>&1 || batchpipe() { node "$here/../bin/batchpipe.js" "$@"; }
out=${1:-runs}
mkdir -p "$out"
batchpipe run "$here/feedback.csv" --backend local --ledger "$out/sentiment.db" \
  --model gpt-4o-mini --id-column id --body "$here/sentiment-body.json" \
  --output-schema "$here/sentiment-schema.json" --expand > "$out/sentiment.csv"
echo "wrote $out/sentiment.csv" >&2
