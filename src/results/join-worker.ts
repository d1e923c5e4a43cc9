/**
 * Join worker: joins some partitions of the staged outcomes to their requests, into a scratch
 * database of its own, while the ledger's thread joins the others (see OutcomeStage). A fresh thread
 * rather than the parse worker: that one's heap, full of parse garbage, would stay resident through
 * the join (~35 MB more peak memory on 1,000,000 lines). It is started with the parse worker and
 * waits for its one message, so its start-up is not on the way.
 */
import { parentPort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { errorToData } from '../prepare/thread-errors.js';
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
    db.close();
    parentPort!.postMessage({ joined } satisfies JoinWorkerReply);
  } catch (err) {
    parentPort!.postMessage({ error: errorToData(err) } satisfies JoinWorkerReply);
  }
});
