#!/bin/sh
# batchpipe in a shell pipe: records come in on stdin, results go out on stdout, everything else
# (progress, the summary) goes to stderr, and a reader that stops early (`head`) ends it quietly.
# The ledger keeps the run: run the same line again and it only writes the results again.
#   sh examples/pipeline.sh [OUT_DIR]       → the first 5 rows of results on stdout (default: runs/)
set -eu
here=$(dirname "$0")
# `batchpipe` on PATH (npm install -g batchpipe, npm link), or this clone's own.
command -v batchpipe >/dev/null 2>&1 || batchpipe() { node "$here/../bin/batchpipe.js" "$@"; }
out=${1:-runs}
mkdir -p "$out"
cat "$here/feedback.csv" \
  | batchpipe run - --backend local --ledger "$out/pipe.db" --model gpt-4o-mini --id-column id \
      --system 'Answer with one word: positive, negative or mixed.' --prompt '{{text}}' --quiet \
  | head -n 6
