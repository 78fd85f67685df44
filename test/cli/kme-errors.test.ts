import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { portAnswers } from '../../src/cli/ports.js';
import type { KmeConfig } from '../../src/kme/config.js';
import { LOCK_FILE, type LockOwner } from '../../src/kme/data-dir-lock.js';
import { KmeLab } from '../helpers/kme-lab.js';

const BIN = fileURLToPath(new URL('../../../bin/qks.js', import.meta.url));

/** One `qks` run to its end: its exit code and what it printed. */
function qks(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A listener squatting a port; connections it gets (a peer KME dialling, say) are held until close. */
const occupy = (port: number, host = '127.0.0.1') =>
  new Promise<Server>((resolve, reject) => {
    const sockets = new Set<Socket>();
    const s = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
    squatted.set(s, sockets);
  });
const squatted = new Map<Server, Set<Socket>>();
/** Closes the squatter, its held connections too: close() alone waits for them, forever if kept open. */
const close = (s: Server) =>
  new Promise((r) => {
    s.close(r);
    squatted.get(s)?.forEach((socket) => socket.destroy());
  });

/**
 * `qks kme` as a user runs it, against a deployment `qks init` made: a second KME on a data_dir in
 * use, a KME killed and started again, a port taken, files missing. Each refusal is one line on
 * stderr, `qks kme: …`, exit code 2, and leaves nothing behind.
 */
describe('qks kme refuses what it cannot do, in one line', () => {
  const lab = new KmeLab();
  let file: string;
  let config: KmeConfig;
  let lock: string;
  const owner = () => JSON.parse(readFileSync(lock, 'utf8')) as LockOwner;
  const since = (o: LockOwner) => o.started_at.replace(/\.\d+Z$/, 'Z');
  /** A copy of kme-a's configuration with a change, in the deployment's folder. */
  const variant = (name: string, change: (c: KmeConfig) => void) => {
    const c = JSON.parse(readFileSync(file, 'utf8')) as KmeConfig;
    change(c);
    const f = join(lab.deployment.dir, name);
    writeFileSync(f, JSON.stringify(c, null, 2));
    return f;
  };

  before(async () => {
    await lab.start();
    ({ file, config } = lab.deployment.configs.find((c) => c.kme === 'kme-a')!);
    lock = join(config.data_dir, LOCK_FILE);
  });
  after(() => lab.stop());

  it('a second KME on the same data_dir is refused, naming the running one; the first goes on serving', async () => {
    const running = owner();
    assert.equal(running.pid, lab.procs.pid('kme-a'));
    assert.equal(running.kme_id, 'kme-a');
    const second = await qks('kme', '--config', file);
    assert.equal(second.status, 2);
    assert.equal(
      second.stderr,
      `qks kme: data_dir ${config.data_dir} is in use by another KME (pid ${running.pid}, started ${since(running)}); stop it first\n`,
    );
    assert.deepEqual(owner(), running, 'the lock is still the first KME’s');
    const status = await lab.client('sae-a1').get('/api/v1/keys/sae-b1/status');
    assert.equal(status.status, 200);
  });

  it('after kill -9 the lock is stale, and the next `qks kme` takes the data_dir over', async () => {
    const killed = owner();
    await lab.procs.kill('kme-a');
    assert.deepEqual(owner(), killed, 'SIGKILL leaves the lock file');
    await lab.procs.start('kme-a');
    assert.equal(owner().pid, lab.procs.pid('kme-a'));
    assert.notEqual(owner().pid, killed.pid);
    assert.equal((await lab.client('sae-a1').get('/api/v1/keys/sae-b1/status')).status, 200);
  });

  it('a lock whose pid now belongs to another process (a reused pid) is taken over', async () => {
    await lab.procs.terminate('kme-a');
    assert.equal(existsSync(lock), false, 'a clean stop removes the lock');
    // This test process is alive, but did not start when the lock says.
    const reused: LockOwner = {
      pid: process.pid,
      proc_start: '1',
      started_at: '2026-01-01T00:00:00.000Z',
      kme_id: 'x',
    };
    writeFileSync(lock, JSON.stringify(reused));
    await lab.procs.start('kme-a');
    assert.equal(owner().pid, lab.procs.pid('kme-a'));
  });

  it('two `qks kme` started at once on a stale lock: one serves, the other is refused', async () => {
    const stale = owner();
    await lab.procs.kill('kme-a');
    const runs = [0, 1].map((i) => qks('kme', '--config', file).then((run) => ({ i, run })));
    // The refused one exits; the winner runs until stopped.
    const { i, run: loser } = await Promise.race(runs);
    assert.equal(loser.status, 2, loser.stderr);
    const winner = owner();
    assert.notEqual(winner.pid, stale.pid);
    assert.equal(
      loser.stderr,
      `qks kme: data_dir ${config.data_dir} is in use by another KME (pid ${winner.pid}, started ${since(winner)}); stop it first\n`,
    );
    for (let i = 0; !(await portAnswers(config.kme_api.port)) && i < 400; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(await portAnswers(config.sae_api.port), true);
    process.kill(winner.pid, 'SIGTERM');
    const done = (await runs[1 - i]!).run;
    assert.equal(done.status, 0, done.stderr);
    assert.equal(existsSync(lock), false);
  });

  it('a taken port is named with its key and file; nothing is left listening or locked', async () => {
    for (const api of ['sae_api', 'kme_api'] as const) {
      const port = config[api].port;
      const squatter = await occupy(port);
      try {
        const run = await qks('kme', '--config', file);
        assert.equal(run.status, 2);
        assert.equal(
          run.stderr,
          `qks kme: ${file}: ${api}.port ${port} on 127.0.0.1 is already in use by another process; choose another port\n`,
        );
        assert.equal(existsSync(lock), false, 'the lock is released');
      } finally {
        await close(squatter);
      }
      // kme_api taken: the SAE API had opened first; it is closed again.
      assert.equal(await portAnswers(config.sae_api.port), false);
    }
    const elsewhere = variant('elsewhere.json', (c) => (c.sae_api.host = '192.0.2.1'));
    const run = await qks('kme', '--config', elsewhere);
    assert.equal(run.status, 2);
    assert.equal(
      run.stderr,
      `qks kme: ${elsewhere}: sae_api.host 192.0.2.1 is not an address of this machine; choose one of its addresses (or 127.0.0.1)\n`,
    );
  });

  it('files named in the configuration that are missing or wrong are named with their key', async () => {
    const missing = join(lab.deployment.dir, 'pki', 'nope.pem');
    const noCert = variant('no-cert.json', (c) => (c.sae_api.cert = missing));
    let run = await qks('kme', '--config', noCert);
    assert.equal(run.status, 2);
    assert.equal(run.stderr, `qks kme: ${noCert}: sae_api.cert: cannot read ${missing} (no such file)\n`);

    const notPem = join(lab.deployment.dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    const twoWrong = variant('two-wrong.json', (c) => {
      c.kme_api.ca = notPem;
      c.sae_api.crl = lab.deployment.dir;
    });
    run = await qks('kme', '--config', twoWrong);
    assert.equal(run.status, 2);
    assert.equal(
      run.stderr,
      `qks kme: ${twoWrong}: sae_api.crl: cannot read ${lab.deployment.dir} (a directory, not a file)\n` +
        `${twoWrong}: kme_api.ca: ${notPem} is not a PEM certificate\n`,
    );

    const otherKey = variant('other-key.json', (c) => (c.sae_api.key = c.kme_api.key));
    run = await qks('kme', '--config', otherKey);
    assert.equal(run.status, 2);
    assert.equal(
      run.stderr,
      `qks kme: ${otherKey}: sae_api.key: ${config.kme_api.key} is not the key of sae_api.cert ${config.sae_api.cert}\n`,
    );
    assert.equal(existsSync(lock), false);
  });

  it('a configuration that is missing, not JSON, or has an unknown key says so with the file', async () => {
    const absent = join(lab.deployment.dir, 'absent.json');
    let run = await qks('kme', '--config', absent);
    assert.equal(run.status, 2);
    assert.equal(run.stderr, `qks kme: cannot read configuration ${absent} (no such file)\n`);

    const broken = join(lab.deployment.dir, 'broken.json');
    writeFileSync(broken, '{\n  "kme_id": "kme-a",\n}\n');
    run = await qks('kme', '--config', broken);
    assert.equal(run.status, 2);
    assert.match(
      run.stderr,
      new RegExp(`^qks kme: configuration ${broken} is not valid JSON: .*line 3,? column 1\\)?\\n$`),
    );

    const colour = variant('colour.json', (c) => ((c as unknown as Record<string, unknown>)['colour'] = 'blue'));
    run = await qks('kme', '--config', colour);
    assert.equal(run.status, 2);
    assert.equal(
      run.stderr,
      `qks kme: invalid configuration ${colour}: unknown key "colour" at the top level; allowed: kme_id, node_address, data_dir, store, ` +
        'store_synchronous, postgres, master_key, sae_api, kme_api, skip, access, peers, saes, network, links, limits, key_ttl_seconds, crl, replica, log_level\n',
    );
  });

  it('after all that, kme-a starts and serves again', async () => {
    await lab.procs.start('kme-a');
    assert.equal((await lab.client('sae-a1').get('/api/v1/keys/sae-b1/status')).status, 200);
  });
});
