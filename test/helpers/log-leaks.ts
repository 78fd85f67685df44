import { createHash } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

/**
 * Catches key material in logs. Every key a test receives is fingerprinted into a ledger under one
 * root directory (QKS_TEST_LOG_ROOT, set by scripts/test.sh); the KMEs' logs are archived under the
 * same root when a test is done with them; scanners decode every base64, base64url and hex run and
 * every JSON byte array in a log and look for any 8 bytes of any delivered key, at any offset. So
 * a key logged whole, in part (8 bytes or more), inside a larger buffer, or in another encoding
 * is found. The ledger holds fingerprints only (a 32-bit tag to sift and a SHA-256 to confirm per
 * 8-byte piece), never the keys.
 */
export const LOG_ROOT = process.env['QKS_TEST_LOG_ROOT'] ?? join(tmpdir(), 'qks-test-logs');
const PIECE = 8;

const tagOf = (b: Buffer, at: number) => (b.readUInt32LE(at) ^ Math.imul(b.readUInt32LE(at + 4), 0x9e3779b1)) >>> 0;
const shaOf = (b: Buffer, at: number) =>
  createHash('sha256')
    .update(b.subarray(at, at + PIECE))
    .digest('base64');

export interface Fingerprints {
  readonly tags: Set<number>;
  readonly shas: Set<string>;
  keys: number;
}

export const emptyFingerprints = (): Fingerprints => ({ tags: new Set(), shas: new Set(), keys: 0 });

/** Adds a key's pieces to `into`. */
export function fingerprint(key: Buffer, into: Fingerprints): { tags: number[]; shas: string[] } {
  const tags: number[] = [];
  const shas: string[] = [];
  for (let at = 0; at + PIECE <= key.length; at += PIECE) {
    tags.push(tagOf(key, at));
    shas.push(shaOf(key, at));
  }
  tags.forEach((t) => into.tags.add(t));
  shas.forEach((s) => into.shas.add(s));
  into.keys += 1;
  return { tags, shas };
}

/** Records keys (base64, as the API sends them) that this test process received. */
export function recordDeliveredKeys(keys: readonly string[]): void {
  if (keys.length === 0) return;
  mkdirSync(LOG_ROOT, { recursive: true });
  const scratch = emptyFingerprints();
  const lines = keys.map((k) => JSON.stringify(fingerprint(Buffer.from(k, 'base64'), scratch))).join('\n');
  appendFileSync(join(LOG_ROOT, `ledger-${process.pid}.jsonl`), lines + '\n', { mode: 0o600 });
}

/** Every fingerprint every test process has recorded so far. */
export function readLedger(root = LOG_ROOT): Fingerprints {
  const fp = emptyFingerprints();
  if (!existsSync(root)) return fp;
  for (const file of readdirSync(root).filter((f) => /^ledger-\d+\.jsonl$/.test(f))) {
    for (const line of readFileSync(join(root, file), 'utf8').split('\n')) {
      if (!line) continue;
      let entry: { tags: number[]; shas: string[] };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue; // a line another process is still writing
      }
      entry.tags.forEach((t) => fp.tags.add(t));
      entry.shas.forEach((s) => fp.shas.add(s));
      fp.keys += 1;
    }
  }
  return fp;
}

const BASE64_RUN = /[A-Za-z0-9+/_-]{11,}={0,2}/g;
const HEX_RUN = /[0-9a-fA-F]{16,}/g;
const BYTE_ARRAY = /\[\s*\d{1,3}(?:\s*,\s*\d{1,3}){7,}\s*\]/g;

/** Every byte string a piece of text could be carrying. */
function* decodings(text: string): Generator<Buffer> {
  for (const [run] of text.matchAll(BASE64_RUN)) {
    const std = run.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
    // A key's encoding may start at any of four positions within a longer run.
    for (let shift = 0; shift < 4 && std.length - shift >= 11; shift++) yield Buffer.from(std.slice(shift), 'base64');
  }
  for (const [run] of text.matchAll(HEX_RUN)) {
    yield Buffer.from(run.slice(0, run.length & ~1), 'hex');
    yield Buffer.from(run.slice(1, 1 + ((run.length - 1) & ~1)), 'hex');
  }
  for (const [array] of text.matchAll(BYTE_ARRAY)) {
    const bytes = array.slice(1, -1).split(',').map(Number);
    if (bytes.every((b) => b <= 255)) yield Buffer.from(bytes);
  }
  // Raw bytes written as text.
  yield Buffer.from(text, 'latin1');
}

/** Lines of `text` that carry 8 or more bytes of a key in `fp`: [line number, what matched]. */
export function findLeaks(text: string, fp: Fingerprints): Array<{ line: number; excerpt: string }> {
  const leaks: Array<{ line: number; excerpt: string }> = [];
  if (fp.tags.size === 0) return leaks;
  text.split('\n').forEach((line, i) => {
    for (const bytes of decodings(line)) {
      for (let at = 0; at + PIECE <= bytes.length; at++) {
        if (fp.tags.has(tagOf(bytes, at)) && fp.shas.has(shaOf(bytes, at))) {
          // Only the position is reported: the line itself carries key material.
          leaks.push({ line: i + 1, excerpt: `${line.length} characters, key bytes at decoded offset ${at}` });
          return;
        }
      }
    }
  });
  return leaks;
}

const LOG_FILE = /\.(log|out|err)$/;

function logFiles(dir: string, depth = 3): string[] {
  if (!existsSync(dir) || depth < 0) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) return logFiles(path, depth - 1);
    return st.isFile() && LOG_FILE.test(name) ? [path] : [];
  });
}

/**
 * Copies the log files under `dir` to the archive (for the final scan of the whole suite) and
 * scans them now against every key recorded so far; throws, naming the file and line, on a leak.
 */
export function archiveAndCheckLogs(dir: string): void {
  const files = logFiles(dir);
  if (files.length === 0) return;
  mkdirSync(join(LOG_ROOT, 'logs'), { recursive: true });
  const into = mkdtempSync(join(LOG_ROOT, 'logs', `${basename(dir)}-`));
  const fp = readLedger();
  const problems: string[] = [];
  files.forEach((file, i) => {
    copyFileSync(file, join(into, `${i}-${basename(file)}`));
    for (const leak of findLeaks(readFileSync(file, 'latin1'), fp))
      problems.push(`${file}:${leak.line}: ${leak.excerpt}`);
  });
  if (problems.length > 0) throw new Error(`key material in logs:\n${problems.join('\n')}`);
}

/** Every archived log file (and the suite's own output, when scripts/test.sh saved it). */
export function archivedLogs(root = LOG_ROOT): string[] {
  return logFiles(join(root, 'logs'), 2).concat(logFiles(root, 0));
}
