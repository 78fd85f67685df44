import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../src/kme/config.js';
import { DataDirInUse, LOCK_FILE, lockDataDir, processStart, type LockOwner } from '../../src/kme/data-dir-lock.js';

const MODULE = new URL('../../src/kme/data-dir-lock.js', import.meta.url).href;

/**
 * Processes that each try to take `dir` when told to (all at once), say `won` or `refused <message>`,
 * and hold what they won until their standard input ends, then exit without releasing it, as a KME
 * killed with SIGKILL would. Each is ready (its modules loaded) before any is told to go.
 */
async function race(dir: string, count: number): Promise<string[]> {
  const script = `
    const { lockDataDir } = await import(${JSON.stringify(MODULE)});
    const lines = (await import('node:readline')).createInterface({ input: process.stdin });
    const next = () => new Promise((r) => lines.once('line', r));
    console.log('ready');
    await next();
    try {
      await lockDataDir(${JSON.stringify(dir)}, 'kme-x');
      console.log('won');
    } catch (err) {
      console.log('refused ' + err.message);
    }
    await new Promise((r) => lines.once('close', r));
    process.exit(0);`;
  const children = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    const waiting = new Set<() => void>();
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const check of waiting) check();
    });
    /** Resolves once a line starting with `line` was printed. */
    const said = (line: string) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!out.split('\n').some((l) => l.startsWith(line))) return;
          waiting.delete(check);
          resolve();
        };
        waiting.add(check);
        check();
      });
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    return { child, said, closed, result: () => out.split('\n')[1]!.trim() };
  });
  await Promise.all(children.map((c) => c.said('ready')));
  for (const c of children) c.child.stdin.write('go\n');
  await Promise.all(children.map((c) => Promise.race([c.said('won'), c.said('refused')])));
  for (const c of children) c.child.stdin.end();
  await Promise.all(children.map((c) => c.closed));
  return children.map((c) => c.result());
}

describe('the data_dir lock', () => {
  const root = mkdtempSync(join(tmpdir(), 'qks-lock-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  const freshDir = () => {
    const d = join(root, `d${n++}`);
    mkdirSync(d);
    return d;
  };
  const ownerIn = (dir: string) => JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockOwner;

  it('is held once per process too: a second taker is refused until the first releases', async () => {
    const dir = freshDir();
    const first = await lockDataDir(dir, 'kme-a');
    const owner = ownerIn(dir);
    assert.equal(owner.pid, process.pid);
    assert.equal(owner.proc_start, processStart(process.pid));
    await assert.rejects(lockDataDir(dir, 'kme-a'), (err: Error) => {
      assert.ok(err instanceof DataDirInUse && err instanceof ConfigError);
      assert.equal(
        err.message,
        `data_dir ${dir} is in use by another KME (pid ${process.pid}, started ${owner.started_at.replace(/\.\d+Z$/, 'Z')}); stop it first`,
      );
      return true;
    });
    first.release();
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
    const second = await lockDataDir(dir, 'kme-a');
    // A release by a former holder leaves the new holder's lock alone.
    first.release();
    assert.notEqual(ownerIn(dir).nonce, owner.nonce);
    assert.equal(existsSync(join(dir, LOCK_FILE)), true);
    second.release();
  });

  it('says when data_dir does not exist', async () => {
    const dir = join(root, 'missing');
    await assert.rejects(lockDataDir(dir, 'kme-a'), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, `data_dir ${dir} does not exist; \`qks init\` creates it`);
      return true;
    });
  });

  it('waits on a lock file being written; takes over one left unreadable by a crash', async () => {
    const dir = freshDir();
    const file = join(dir, LOCK_FILE);
    writeFileSync(file, '');
    // Written a moment later, as a KME that has just created it would.
    const me: LockOwner = {
      pid: process.pid,
      proc_start: processStart(process.pid),
      started_at: new Date().toISOString(),
      kme_id: 'kme-a',
    };
    const writer = setTimeout(() => writeFileSync(file, JSON.stringify(me)), 100);
    await assert.rejects(lockDataDir(dir, 'kme-a'), DataDirInUse);
    clearTimeout(writer);
    writeFileSync(file, '{"pid": ');
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    const lock = await lockDataDir(dir, 'kme-a');
    assert.equal(ownerIn(dir).pid, process.pid);
    lock.release();
  });

  // Eight processes at the same instant, three times: on a free data_dir, on the stale lock the
  // previous winner left, and on a stale lock whose takeover a dead process had begun.
  for (const round of ['free', 'stale', 'stale with an abandoned takeover'] as const) {
    it(`of eight processes taking a ${round} data_dir at once, exactly one wins`, async () => {
      const dir = round === 'free' ? freshDir() : join(root, 'race');
      if (round === 'free') rmSync(join(root, 'race'), { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      if (round !== 'free') {
        const dead: LockOwner = {
          pid: 2 ** 22 + 1,
          proc_start: '1',
          started_at: '2026-01-01T00:00:00.000Z',
          kme_id: 'x',
        };
        if (!existsSync(join(dir, LOCK_FILE))) writeFileSync(join(dir, LOCK_FILE), JSON.stringify(dead) + '\n');
        if (round === 'stale with an abandoned takeover') {
          const stale = readFileSync(join(dir, LOCK_FILE), 'utf8');
          const tag = createHash('sha256').update(stale).digest('hex').slice(0, 16);
          writeFileSync(join(dir, `${LOCK_FILE}.takeover-${tag}`), JSON.stringify(dead) + '\n');
        }
      }
      const results = await race(dir, 8);
      assert.equal(results.filter((r) => r === 'won').length, 1, results.join('\n'));
      const winner = ownerIn(dir);
      for (const r of results.filter((x) => x !== 'won')) {
        assert.match(r, new RegExp(`^refused data_dir ${dir} is in use by another KME \\(pid ${winner.pid}, `));
      }
      // Guards are removed by whoever held them; only the (now stale) lock stays.
      assert.deepEqual(readdirSync(dir), [LOCK_FILE]);
    });
  }
});
