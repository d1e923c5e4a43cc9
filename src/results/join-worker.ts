/**
 * Join worker: joins some partitions of the staged outcomes to their requests, into a scratch
 * database of its own, while the ledger's thread joins the others (see OutcomeStage). A fresh thread
 * rather than the parse worker: that one's heap, full of parse garbage, would stay resident through
 * the join (~35 MB more peak memory on 1,000,000 lines). It is started with the parse worker and
 * waits for its one task, so its start-up is not on the way. Once its half is joined it checkpoints
 * the ledger's WAL until told to stop (see joinPartitions).
 */
import { serveTasks } from '../internal/worker-pool.js';
import { type JoinCounts, joinPartitions, type PartitionJoin } from '../ledger/outcome-stage.js';

/** What the join worker is given: what to join, and where the ledger's thread says stop. */
export interface JoinWorkerData extends PartitionJoin {
  /** Set to 1 (and notified) by the ledger's thread once it is done writing: checkpoints stop. */
  stopCheckpoints: Int32Array;
}

let join: ReturnType<typeof joinPartitions> | undefined;

serveTasks<JoinWorkerData, JoinCounts>(
  (data) => {
    join = joinPartitions(data);
    return join.joined;
  },
  { afterReply: (data) => join?.checkpointUntil(data.stopCheckpoints) },
);
