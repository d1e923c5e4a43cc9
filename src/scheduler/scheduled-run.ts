/**
 * What every step of the scheduler works on: the ledger's batch tables and request states, the
 * run's id and endpoint, the provider behind the port, and who listens to its events. The
 * scheduler's only way to the ledger (through src/ledger) and to the provider (through `remote` and
 * `createOnce`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchpipeError, ErrorCodes } from '../errors.js';
import type { BatchpipeEvent, EventListener } from '../events.js';
import { BatchTables } from '../ledger/batches.js';
import { runEndpointOf, runIdOf } from '../ledger/identity.js';
import type { Ledger } from '../ledger/ledger.js';
import { RequestStates } from '../ledger/request-states.js';
import { type BatchProvider, ProviderError } from '../providers/port.js';

/** Tries of a call that creates something remotely, asking between tries whether the last one landed. */
const CREATE_TRIES = 6;

export class ScheduledRun {
  readonly tables: BatchTables;
  readonly states: RequestStates;

  constructor(
    readonly ledger: Ledger,
    readonly provider: BatchProvider,
    readonly onEvent?: EventListener | undefined,
  ) {
    this.tables = BatchTables.of(ledger);
    this.states = RequestStates.of(ledger);
  }

  /** Whether anyone listens: events that cost a query are only built then. */
  get listening(): boolean {
    return this.onEvent !== undefined;
  }

  emit(event: BatchpipeEvent): void {
    this.onEvent?.(event);
  }

  get runId(): string {
    return runIdOf(this.ledger);
  }

  get endpoint(): string {
    return runEndpointOf(this.ledger);
  }

  /** Runs a provider call; its failure becomes `BP_API` saying what was tried, without secrets. */
  async remote<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw this.apiError(what, err);
    }
  }

  /**
   * Runs a call that creates something remotely, at most `CREATE_TRIES` times. Providers make one
   * attempt per call: a retry after a lost response could create a second file or batch. Instead,
   * before each new try, `landed` asks the provider whether the previous try took effect after all.
   */
  async createOnce<T>(
    what: string,
    create: () => Promise<T>,
    landed: () => Promise<T | undefined>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await create();
      } catch (err) {
        const retryable = err instanceof ProviderError && err.retryable;
        if (!retryable || attempt >= CREATE_TRIES) throw this.apiError(what, err);
        await sleep(Math.min(30_000, 500 * 2 ** (attempt - 1)));
        const found = await landed();
        if (found !== undefined) return found;
      }
    }
  }

  /** A failed provider call as a BatchpipeError, with any secret removed from the message. */
  private apiError(what: string, err: unknown): BatchpipeError {
    const detail = err instanceof Error ? err.message : String(err);
    return new BatchpipeError(ErrorCodes.API, this.provider.redact(`${what} failed: ${detail}`), {
      cause: err,
    });
  }
}
