import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config.js';

/** The lock file a running KME keeps in its data_dir. */
export const LOCK_FILE = 'kme.lock';

/** Who holds a data_dir: what the lock file says. */
export interface LockOwner {
  readonly pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22); null without /proc. */
  readonly proc_start: string | null;
  /** When it took the lock, ISO 8601. */
  readonly started_at: string;
  readonly kme_id: string;
  /** Tells two locks of one process apart (a KME stopped and started within a millisecond). */
  readonly nonce?: string;
}

/** Another live process holds the data_dir: a second KME must not serve keys from the same store. */
export class DataDirInUse extends ConfigError {
  override name = 'DataDirInUse';
  readonly owner: LockOwner;
  constructor(dataDir: string, owner: LockOwner) {
    const since = owner.started_at.replace(/\.\d+Z$/, 'Z');
    super(`data_dir ${dataDir} is in use by another KME (pid ${owner.pid}, started ${since}); stop it first`);
    this.owner = owner;
  }
}

export interface DataDirLock {
  readonly file: string;
  /** Removes the lock file if it is still this process's. */
  release(): void;
}

/** A lock file without readable contents this old is a leftover (a crash between create and write). */
const UNREADABLE_STALE_MS = 5000;

/**
 * Takes the data_dir for this process, or throws DataDirInUse naming the process that holds it.
 *
 * The lock file is created with O_EXCL and holds the owner's pid and start time. A lock whose owner
 * is gone (no such pid, or the pid now belongs to a process that started at another time) is taken
 * over, so a KME killed with SIGKILL leaves nothing to clean up by hand. Taking over is done under
 * a guard file named after the stale lock's contents, itself created with O_EXCL: of several
 * processes that find the same stale lock, one removes it, and only if it is still that lock. A
 * guard whose holder died is passed by under a further guard named after both, with the same rule.
 */
export async function lockDataDir(dataDir: string, kmeId: string): Promise<DataDirLock> {
  const file = join(dataDir, LOCK_FILE);
  const mine =
    JSON.stringify({
      pid: process.pid,
      proc_start: processStart(process.pid),
      started_at: new Date().toISOString(),
      kme_id: kmeId,
      nonce: randomBytes(8).toString('hex'),
    } satisfies LockOwner) + '\n';
  // Longer than a leftover takes to count as one: a crash between create and write is waited out.
  const deadline = Date.now() + UNREADABLE_STALE_MS + 2000;
  while (Date.now() < deadline) {
    if (create(file, mine, dataDir)) return { file, release: () => releaseIfMine(file, mine) };
    const held = readRaw(file);
    if (held === undefined) continue;
    const owner = parseOwner(held);
    if (owner && alive(owner)) throw new DataDirInUse(dataDir, owner);
    if (!owner && !leftover(file)) {
      // Created this instant and not written yet: look again shortly.
      await new Promise((r) => setTimeout(r, 10));
      continue;
    }
    if (takeOver(file, held, mine, dataDir)) return { file, release: () => releaseIfMine(file, mine) };
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new ConfigError(`data_dir ${dataDir}: could not take ${LOCK_FILE}; other processes keep changing it`);
}

/** Creates `file` with O_EXCL holding `contents`; false if it exists. */
function create(file: string, contents: string, dataDir: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'ENOENT') throw new ConfigError(`data_dir ${dataDir} does not exist; \`qks init\` creates it`);
    throw new ConfigError(`data_dir ${dataDir}: cannot create ${LOCK_FILE} (${(err as Error).message})`);
  }
  try {
    writeSync(fd, contents);
  } finally {
    closeSync(fd);
  }
  return true;
}

function takeOver(file: string, stale: string, mine: string, dataDir: string): boolean {
  const passed: string[] = [];
  let guard = `${file}.takeover-${tag(stale)}`;
  for (;;) {
    if (create(guard, mine, dataDir)) break;
    const holder = readRaw(guard);
    if (holder === undefined) continue;
    const owner = parseOwner(holder);
    // Another process is taking the lock over right now.
    if (owner ? alive(owner) : !leftover(guard)) return false;
    passed.push(guard);
    guard = `${file}.takeover-${tag(stale)}-${tag(holder)}`;
  }
  try {
    // Only this guard's holder may remove this very lock; anything else in its place stays.
    if (readRaw(file) !== stale) return false;
    unlinkSync(file);
    return create(file, mine, dataDir);
  } finally {
    rmSync(guard, { force: true });
    for (const g of passed) rmSync(g, { force: true });
  }
}

function releaseIfMine(file: string, mine: string): void {
  // Nobody replaces a lock whose owner lives, so between this read and the unlink it stays ours.
  if (readRaw(file) === mine) rmSync(file, { force: true });
}

const tag = (raw: string) => createHash('sha256').update(raw).digest('hex').slice(0, 16);

function readRaw(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function leftover(file: string): boolean {
  try {
    return Date.now() - statSync(file).mtimeMs > UNREADABLE_STALE_MS;
  } catch {
    return false;
  }
}

function parseOwner(raw: string): LockOwner | undefined {
  try {
    const o = JSON.parse(raw) as Partial<LockOwner>;
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) return undefined;
    return {
      pid: o.pid,
      proc_start: typeof o.proc_start === 'string' ? o.proc_start : null,
      started_at: typeof o.started_at === 'string' ? o.started_at : 'at an unknown time',
      kme_id: typeof o.kme_id === 'string' ? o.kme_id : '?',
    };
  } catch {
    return undefined;
  }
}

/**
 * The start time of a process in clock ticks since boot: field 22 of /proc/<pid>/stat. Null when
 * it cannot be read (no such process, or no /proc on this system).
 */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2, the command name, is in parentheses and may itself hold spaces and parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** The live KME that holds the data_dir now, if any. */
export function lockHolder(dataDir: string): LockOwner | undefined {
  const held = readRaw(join(dataDir, LOCK_FILE));
  const owner = held === undefined ? undefined : parseOwner(held);
  return owner && alive(owner) ? owner : undefined;
}

/** Whether the lock's owner still runs: its pid exists and, where /proc tells, started when it said. */
function alive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (processStart(process.pid) === null) return true;
  const start = processStart(owner.pid);
  return start !== null && (owner.proc_start === null || start === owner.proc_start);
}
