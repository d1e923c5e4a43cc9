#!/bin/sh
# Embeddings enrichment of a JSONL catalogue: every product gets the vector of its name and
# description, and comes back as a JSON line: its record as it was, and the vector as `result`.
# On the built-in local backend (no key; its vectors are synthetic: unit length, equal texts embed
# equally). For OpenAI, drop --backend local and set OPENAI_API_KEY.
#   sh examples/embeddings.sh [OUT_DIR]     → OUT_DIR/products.embedded.jsonl (default: runs/)
set -eu
here=$(dirname "$0")
# `batchpipe` on PATH (npm install -g batchpipe, npm link), or this clone's own.
command -v batchpipe >/dev/null 2>&1 || batchpipe() { node "$here/../bin/batchpipe.js" "$@"; }
out=${1:-runs}
mkdir -p "$out"
batchpipe run "$here/products.jsonl" --backend local --ledger "$out/products.db" \
  --endpoint /v1/embeddings --model text-embedding-3-small --id-column sku \
  --prompt '{{name}}: {{description}}' > "$out/products.embedded.jsonl"
echo "wrote $out/products.embedded.jsonl" >&2
