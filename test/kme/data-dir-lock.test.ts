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
 * A process that tries to take `dir` at wall-clock time `at` (so that several try at once), says
 * `won` or `refused <message>`, holds what it won for `holdMs`, and exits without releasing it, as a
 * KME killed with SIGKILL would.
 */
function contender(dir: string, at: number, holdMs: number): Promise<string> {
  const script = `
    const { lockDataDir } = await import(${JSON.stringify(MODULE)});
    while (Date.now() < ${at});
    try {
      await lockDataDir(${JSON.stringify(dir)}, 'kme-x');
      console.log('won');
      await new Promise((r) => setTimeout(r, ${holdMs}));
    } catch (err) {
      console.log('refused ' + err.message);
    }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', () => resolve(out.trim()));
  });
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
    assert.equal(ownerIn(dir).started_at > owner.started_at, true);
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
      const at = Date.now() + 1500;
      const results = await Promise.all(Array.from({ length: 8 }, () => contender(dir, at, 1000)));
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
