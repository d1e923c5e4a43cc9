/**
 * Join worker: joins some partitions of the staged outcomes to their requests, into a scratch
 * database of its own, while the ledger's thread joins the others (see OutcomeStage). A fresh thread
 * rather than the parse worker: that one's heap, full of parse garbage, would stay resident through
 * the join (~35 MB more peak memory on 1,000,000 lines). It is started with the parse worker and
 * waits for its one message, so its start-up is not on the way.
 *
 * Once its half is joined it checkpoints the ledger's WAL while the ledger's thread applies the
 * outcomes, until told to stop: the second core is idle then, and checkpoints were ~0.25 s of the
 * apply for 1,000,000 lines.
 */
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { errorToData } from '../internal/thread-errors.js';
import {
  attachScratch,
  type JoinCounts,
  joinStaged,
  STAGE_CACHE_KIB,
  stagedSources,
} from './outcome-stage.js';

/** What to join, and where. */
export interface JoinWorkerData {
  /** The ledger file: only its `requests` are read. */
  ledgerPath: string;
  /** Staging databases, no longer written (see StagingTable). */
  stagingPaths: string[];
  partitions: number[];
  /** A new scratch database for the joined outcomes (table `sorted`). */
  outPath: string;
  /** Set to 1 (and notified) by the ledger's thread once it is done writing: checkpoints stop. */
  stopCheckpoints: Int32Array;
}

export type JoinWorkerReply = { joined: JoinCounts } | { error: ReturnType<typeof errorToData> };

parentPort!.once('message', (data: JoinWorkerData) => {
  try {
    const db = new Database(':memory:');
    // SQLite's sorter sizes its in-memory runs from the main schema's page cache.
    db.pragma(`cache_size = ${-STAGE_CACHE_KIB}`);
    db.prepare('ATTACH DATABASE ? AS ledger').run(data.ledgerPath);
    db.pragma(`ledger.cache_size = ${-STAGE_CACHE_KIB}`);
    const sources = data.stagingPaths.flatMap((path, i) => {
      attachScratch(db, path, `stage_${i}`);
      return data.partitions.flatMap((p) => stagedSources(`stage_${i}`, p));
    });
    attachScratch(db, data.outPath, 'joined');
    const joined = joinStaged(db, sources, 'joined.sorted', 'ledger.requests');
    for (const schema of ['joined', ...data.stagingPaths.map((_, i) => `stage_${i}`)]) {
      db.exec(`DETACH DATABASE ${schema}`);
    }
    parentPort!.postMessage({ joined } satisfies JoinWorkerReply);
    checkpointUntilStopped(db, data.stopCheckpoints);
    db.close();
  } catch (err) {
    parentPort!.postMessage({ error: errorToData(err) } satisfies JoinWorkerReply);
  }
});

/** How often the ledger's WAL is checkpointed while outcomes are applied. */
const CHECKPOINT_EVERY_MS = 20;

/**
 * PASSIVE checkpoints copy committed WAL frames into the ledger file without waiting for the writer
 * or blocking it. One that fails only ends the loop: the ledger's thread checkpoints what is left.
 */
function checkpointUntilStopped(db: Database.Database, stop: Int32Array): void {
  try {
    while (Atomics.load(stop, 0) === 0) {
      db.pragma('ledger.wal_checkpoint(PASSIVE)');
      Atomics.wait(stop, 0, 0, CHECKPOINT_EVERY_MS);
    }
  } catch {
    // the ledger's thread checkpoints what is left once its autocheckpoint is back
  }
}
