#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072 MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=4
// A 4 MB young generation (V8's default grows to 16 MB per semi-space): bulk runs keep ~30 MB less
// resident at no measured cost in speed, since their garbage dies young either way.
// At most two malloc arenas (glibc's default is 8 per core): SQLite's sorter starts a helper thread
// per sort task, and each new thread could take an arena of its own; `ingest` of 1,000,000 lines
// peaks ~8 MB lower and steadier (148–153 MiB against 155–163), at the same speed.
// Fixed malloc thresholds: allocations of 128 KB and more (chunks, buffers) are mapped and unmapped
// on their own, and free memory at the top of the heap goes back to the system. glibc otherwise
// raises its mmap threshold after the first large free, up to 32 MB, and keeps what a phase of a
// long command freed: `run` would carry the memory prepare and the uploads no longer use through
// collect and results. Each such allocation then costs system calls and fresh pages, so hot loops
// must not make one per chunk: prepare passes its chunk buffers round (src/prepare/chunk-sinks.ts)
// and its writer keeps one flush buffer.
// Thin launcher: the CLI lives in the compiled library (built by `npm ci` via the `prepare` script).
import { setFlagsFromString } from 'node:v8';

// The old generation grows to twice what a full collection leaves live, not V8's up to four times,
// and is not shrunk while the process waits: a long `run`'s peak then no longer depends on when its
// collections fall, and after its polling waits (when V8's memory reducer shrank the heap) writing
// the results no longer sets off a full collection every few megabytes (README, "The whole run").
// Set here, not on the line above, which kernels before 5.1 cut at 127 characters.
setFlagsFromString('--heap-growing-percent=100');
setFlagsFromString('--no-memory-reducer');
const { main } = await import('../dist/src/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`batchpipe: internal error: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
