#!/usr/bin/env node
// Thin launcher: the CLI lives in the compiled library (built by `npm ci` via the `prepare` script).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`batchpipe: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
