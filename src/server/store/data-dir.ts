import { mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isBatchId, isFileId } from '../util/ids.js';

/**
 * The layout of `--data DIR`. Every path below is built from an id that has already matched its strict
 * pattern, so no request can name a path outside the directory.
 *
 * ```
 * state.db            files and batches (SQLite, WAL)
 * files/<file-id>     file contents
 * uploads/*.part      uploads being received (removed when a server takes the lock)
 * work/<batch-id>/    output.jsonl and errors.jsonl while a batch runs (the crash journal)
 * server.lock         pid of the server that owns the directory
 * ```
 */
export interface DataDir {
  root: string;
  dbPath: string;
  uploadsDir: string;
  filePath(fileId: string): string;
  workDir(batchId: string): string;
}

/** Creates (if needed) and describes the data directory. */
export function openDataDir(root: string): DataDir {
  const abs = path.resolve(root);
  const filesDir = path.join(abs, 'files');
  const uploadsDir = path.join(abs, 'uploads');
  const workRoot = path.join(abs, 'work');
  for (const dir of [abs, filesDir, uploadsDir, workRoot]) mkdirSync(dir, { recursive: true });
  return {
    root: abs,
    dbPath: path.join(abs, 'state.db'),
    uploadsDir,
    filePath(fileId) {
      if (!isFileId(fileId))
        throw new Error(`refusing a path for a malformed file id: ${JSON.stringify(fileId)}`);
      return path.join(filesDir, fileId);
    },
    workDir(batchId) {
      if (!isBatchId(batchId))
        throw new Error(`refusing a path for a malformed batch id: ${JSON.stringify(batchId)}`);
      return path.join(workRoot, batchId);
    },
  };
}

/** Data dirs held by servers of this process (the pid in the lock file cannot tell them apart). */
const heldHere = new Set<string>();

/**
 * Takes `server.lock` for this process and clears `uploads/`. Two live servers on one directory would both run its batches,
 * so a lock held by another live process is an error; one left by a dead process is taken over.
 * Returns the release function.
 */
export function lockDataDir(dir: DataDir): () => void {
  if (heldHere.has(dir.root)) throw new Error(`${dir.root} is already in use by a server in this process`);
  const lockPath = path.join(dir.root, 'server.lock');
  let holder: number | undefined;
  try {
    holder = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
  } catch {
    holder = undefined;
  }
  if (holder !== undefined && holder !== process.pid && isAlive(holder)) {
    throw new Error(`${dir.root} is in use by another batchpipe server (pid ${holder})`);
  }
  writeFileSync(lockPath, String(process.pid));
  heldHere.add(dir.root);
  // Only the owner may do this: a half-received upload never became a file, and nothing refers to it.
  for (const name of readdirSync(dir.uploadsDir)) rmSync(path.join(dir.uploadsDir, name), { force: true });
  return () => {
    heldHere.delete(dir.root);
    try {
      if (readFileSync(lockPath, 'utf8') === String(process.pid)) unlinkSync(lockPath);
    } catch {
      // Already gone: nothing to release.
    }
  };
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
