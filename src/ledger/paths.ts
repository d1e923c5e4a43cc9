/**
 * Where a ledger's request files are. The ledger stores each path relative to its own directory (or
 * absolute, for a file outside it), so a run folder keeps working when it is moved and from any
 * working directory. Pure path arithmetic, plus existence checks for converting old ledgers.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';

export class LedgerPaths {
  /** The ledger's directory as the user named it (relative paths stay relative in messages). */
  readonly #dir: string;
  readonly #absoluteDir: string;

  /** `ledgerPath` as given (`:memory:` puts the directory at the working directory). */
  constructor(ledgerPath: string) {
    this.#dir = dirname(ledgerPath);
    this.#absoluteDir = resolve(this.#dir);
  }

  /** The form kept in the ledger of a path given relative to the working directory (or absolute). */
  toStored(path: string): string {
    const absolute = resolve(path);
    const inside = relative(this.#absoluteDir, absolute);
    const outside = inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside);
    return outside ? absolute : inside;
  }

  /** A stored path as this process can open it. */
  resolve(stored: string): string {
    return isAbsolute(stored) ? stored : join(this.#dir, stored);
  }

  /**
   * The stored form of a path kept by a batchpipe from before: relative to the directory that command
   * ran in. Found from here when it exists from here; else the longest tail of it that exists in the
   * ledger's directory (the usual `runs/x.requests/…` of a ledger `runs/x.db`, opened from elsewhere);
   * else it is taken from here, as before.
   */
  fromLegacy(stored: string): string {
    if (isAbsolute(stored) || existsSync(stored)) return this.toStored(stored);
    const parts = normalize(stored).split(sep);
    for (let i = 1; i < parts.length; i++) {
      const tail = join(...parts.slice(i));
      if (existsSync(join(this.#absoluteDir, tail))) return tail;
    }
    return this.toStored(stored);
  }
}
