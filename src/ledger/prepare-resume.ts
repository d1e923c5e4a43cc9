/**
 * What a resumed prepare discards of the run it resumes: the requests of files it never completed,
 * and every request, record and reject from the resume point on. Touches `files`, `requests`,
 * `records` and `rejects`; the caller removes the files on disk.
 */
import { connectionOf, type Ledger } from './ledger.js';

/** Forgets the incomplete files `fileIds` and everything from `nextSeq` on, in one transaction. */
export function discardUnfinishedPrepare(ledger: Ledger, fileIds: readonly number[], nextSeq: number): void {
  const db = connectionOf(ledger);
  const recordsOfFile = db.prepare<[number]>(
    'DELETE FROM records WHERE seq IN (SELECT seq FROM requests WHERE file_id = ?)',
  );
  const requestsOfFile = db.prepare<[number]>('DELETE FROM requests WHERE file_id = ?');
  ledger.transaction(() => {
    for (const id of fileIds) {
      recordsOfFile.run(id);
      requestsOfFile.run(id);
      ledger.deleteFile(id);
    }
    db.prepare<[number]>('DELETE FROM requests WHERE seq >= ?').run(nextSeq);
    db.prepare<[number]>('DELETE FROM records WHERE seq >= ?').run(nextSeq);
    db.prepare<[number]>('DELETE FROM rejects WHERE seq >= ?').run(nextSeq);
  });
}
