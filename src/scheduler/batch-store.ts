import { BatchTables } from '../ledger/batches.js';
import { runEndpointOf, runIdOf } from '../ledger/identity.js';
import type { Ledger } from '../ledger/ledger.js';
import { RequestStates } from '../ledger/request-states.js';

export type { BatchRow, TokenRefusal } from '../ledger/batches.js';

/** The scheduler's view of the ledger: its batch tables and its requests' state transitions. */
export class BatchStore {
  readonly tables: BatchTables;
  readonly states: RequestStates;

  constructor(readonly ledger: Ledger) {
    this.tables = BatchTables.of(ledger);
    this.states = RequestStates.of(ledger);
  }

  get runId(): string {
    return runIdOf(this.ledger);
  }

  get endpoint(): string {
    return runEndpointOf(this.ledger);
  }
}
