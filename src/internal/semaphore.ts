/** A counting gate: at most `limit` holders at once (the local server's batches, the direct path's calls). */
export interface Semaphore {
  /** Resolves with a release function once a slot is free; rejects if `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<() => void>;
}

export function createSemaphore(limit: number): Semaphore {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    active--;
    waiting.shift()?.();
  };
  const grant = (): (() => void) => {
    active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  };
  return {
    acquire(signal) {
      if (signal.aborted) return Promise.reject(signal.reason);
      if (active < limit) return Promise.resolve(grant());
      return new Promise((resolve, reject) => {
        const wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve(grant());
        };
        const onAbort = () => {
          const at = waiting.indexOf(wake);
          if (at >= 0) waiting.splice(at, 1);
          reject(signal.reason);
        };
        waiting.push(wake);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}
