import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Deployment } from '../../src/cli/init.js';
import { KmeProcesses } from '../helpers/kme-process.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { assertSameKeys, shown } from '../helpers/redact.js';
import { TestClient, type HttpResult } from '../helpers/sae-client.js';
import { createDeployment, eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
/** `script` runs a command on a pseudo-terminal: the interactive question. */

interface Issued {
  cert: string;
  key: string;
  serial: string;
  sae: string;
  kme: string | null;
  revoked: string[];
  listed_in?: string[];
  added_to?: string[];
  manifest?: string;
  note: string;
}

/** `qks pki issue …` in its own process, stdin not a terminal. */
const issue = (dir: string, ...args: string[]) =>
  spawnSync(process.execPath, [BIN, 'pki', 'issue', '--dir', dir, ...args], { encoding: 'utf8', input: '' });

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

/**
 * `qks pki issue --sae` while both KMEs of a deployment run as real `qks kme` processes: the new
 * SAE is registered in both configuration files and the manifest, and both KMEs serve it without a
 * restart; a second certificate replaces the first only when asked, revoking it.
 */
describe('qks pki issue --sae registers the SAE at running KMEs', () => {
  let deployment: Deployment;
  let kmes: KmeProcesses;
  const scratch = mkdtempSync(join(tmpdir(), 'qks-pki-register-'));
  const clients: TestClient[] = [];
  const config = (kme: string) => deployment.configs.find((c) => c.kme === kme)!;
  const portOf = (kme: string) => config(kme).config.sae_api.port;
  /** A fresh client (new connection) with the given certificate, at the given KME. */
  const at = (kme: string, files: { cert: string; key: string }) => {
    const c = new TestClient(`https://127.0.0.1:${portOf(kme)}`, { ca: deployment.ca, ...files });
    clients.push(c);
    return c;
  };
  const sae = (id: string) => deployment.saes.find((s) => s.id === id)!;
  const statusAt = async (kme: string, files: { cert: string; key: string }, slave: string) =>
    (await at(kme, files).get(`/api/v1/keys/${slave}/status`)).status;
  let a3: Issued;

  before(async () => {
    deployment = await createDeployment({ rateBps: 1_000_000, operator: 'operator' });
    // As the demo writes it (and `qks init` will).
    writeFileSync(
      join(deployment.dir, 'manifest.json'),
      JSON.stringify(
        {
          ca: deployment.ca,
          kmes: deployment.configs.map((c) => ({
            id: c.kme,
            url: `https://127.0.0.1:${c.config.sae_api.port}`,
            config: c.file,
            log: join(deployment.dir, `${c.kme}.out`),
          })),
          saes: deployment.saes,
        },
        null,
        2,
      ) + '\n',
    );
    kmes = new KmeProcesses(deployment);
    await Promise.all([kmes.start('kme-a'), kmes.start('kme-b')]);
    const a1 = at('kme-a', sae('sae-a1'));
    await eventually(
      async () =>
        ((await a1.get('/api/v1/keys/sae-b1/status')).body as { stored_key_count?: number }).stored_key_count! > 20,
      20_000,
      'key material',
    );
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await kmes?.killAll();
    rmSync(scratch, { recursive: true, force: true });
    if (deployment) {
      try {
        archiveAndCheckLogs(deployment.dir);
      } finally {
        rmSync(deployment.dir, { recursive: true, force: true });
      }
    }
  });

  it('a new SAE gets keys for an SAE at the other KME within seconds, and its slave fetches them', async (t) => {
    const run = issue(deployment.dir, '--sae', 'sae-a3', '--kme', 'kme-a');
    assert.equal(run.status, 0, run.stderr);
    a3 = JSON.parse(run.stdout) as Issued;
    const files = deployment.configs.map((c) => c.file);
    assert.deepEqual(
      { ...a3, serial: '' },
      {
        cert: join(deployment.dir, 'pki', 'saes', 'sae-a3.pem'),
        key: join(deployment.dir, 'pki', 'saes', 'sae-a3.key'),
        serial: '',
        sae: 'sae-a3',
        kme: 'kme-a',
        revoked: [],
        listed_in: files,
        added_to: files,
        manifest: join(deployment.dir, 'manifest.json'),
        note: 'running KMEs reload their saes list within a second; no restart is needed',
      },
    );
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const json = JSON.parse(text) as { saes: unknown[] };
      assert.deepEqual(json.saes.at(-1), { id: 'sae-a3', kme: 'kme-a' }, file);
      assert.equal(text, JSON.stringify(json, null, 2) + '\n', `${file} keeps its formatting`);
    }
    const manifest = readJson(join(deployment.dir, 'manifest.json')) as { saes: unknown[] };
    assert.deepEqual(manifest.saes.at(-1), { id: 'sae-a3', kme: 'kme-a', cert: a3.cert, key: a3.key });

    const started = Date.now();
    const master = at('kme-a', a3);
    let res: HttpResult | undefined;
    await eventually(
      async () => (res = await master.post('/api/v1/keys/sae-b1/enc_keys', { number: 2 })).status === 200,
      15_000,
      `keys for sae-a3 (last answer ${res ? shown(res) : 'none'})`,
    );
    t.diagnostic(`sae-a3 served ${Date.now() - started} ms after qks pki issue returned`);
    const keys = (res!.body as { keys: Array<{ key_ID: string; key: string }> }).keys;
    assert.equal(keys.length, 2);
    const slave = at('kme-b', sae('sae-b1'));
    const fetched = await slave.post('/api/v1/keys/sae-a3/dec_keys', {
      key_IDs: keys.map((k) => ({ key_ID: k.key_ID })),
    });
    assert.equal(fetched.status, 200, shown(fetched));
    assertSameKeys((fetched.body as { keys: typeof keys }).keys, keys, 'sae-b1 fetched what sae-a3 got');

    // The other way: kme-b knows sae-a3 as a slave at kme-a.
    const back = await slave.post('/api/v1/keys/sae-a3/enc_keys', { number: 1 });
    assert.equal(back.status, 200, shown(back));
    const backKeys = (back.body as { keys: typeof keys }).keys;
    const got = await master.post('/api/v1/keys/sae-b1/dec_keys', { key_IDs: [{ key_ID: backKeys[0]!.key_ID }] });
    assert.equal(got.status, 200, shown(got));
    assertSameKeys((got.body as { keys: typeof keys }).keys, backKeys, 'sae-a3 fetched what sae-b1 got');
  });

  it('refuses to register an SAE at a second KME, naming both, and changes nothing', () => {
    const before = [...deployment.configs.map((c) => c.file), join(deployment.dir, 'pki', 'sae-ca.index.json')].map(
      (f) => readFileSync(f, 'utf8'),
    );
    const run = issue(deployment.dir, '--sae', 'sae-a3', '--kme', 'kme-b', '--replace');
    assert.equal(run.status, 2);
    assert.equal(
      run.stderr,
      `qks pki issue: sae-a3 is registered at kme-a, not kme-b (${config('kme-a').file}): pass --kme kme-a, or remove sae-a3 from the saes lists first\n`,
    );
    const afterwards = [...deployment.configs.map((c) => c.file), join(deployment.dir, 'pki', 'sae-ca.index.json')];
    assert.deepEqual(
      afterwards.map((f) => readFileSync(f, 'utf8')),
      before,
    );
  });

  it('names the KMEs when --kme is missing for a new SAE or names none of them; an operator is no SAE', () => {
    const missing = issue(deployment.dir, '--sae', 'sae-c1');
    assert.equal(missing.status, 2);
    assert.equal(
      missing.stderr.split('\n')[0],
      'qks pki issue: which KME serves sae-c1? pass --kme with one of kme-a, kme-b (qks pki issue --help)',
    );
    const unknown = issue(deployment.dir, '--sae', 'sae-c1', '--kme', 'kme-c');
    assert.equal(unknown.status, 2);
    assert.equal(
      unknown.stderr.split('\n')[0],
      `qks pki issue: unknown KME kme-c: ${deployment.dir} has kme-a, kme-b (qks pki issue --help)`,
    );
    assert.ok(!existsSync(join(deployment.dir, 'pki', 'saes', 'sae-c1.pem')), 'no certificate issued');
    const operator = issue(deployment.dir, '--sae', 'operator', '--kme', 'kme-a');
    assert.equal(operator.status, 2);
    const files = deployment.configs.map((c) => c.file).join(', ');
    assert.equal(
      operator.stderr,
      `qks pki issue: operator is an operator (access.operators in ${files}), not an SAE\n`,
    );
  });

  it('re-issuing asks first; --replace revokes the old certificate at the running KMEs', async () => {
    const old = { cert: join(scratch, 'old.pem'), key: join(scratch, 'old.key') };
    copyFileSync(a3.cert, old.cert);
    copyFileSync(a3.key, old.key);
    const refused = issue(deployment.dir, '--sae', 'sae-a3');
    assert.equal(refused.status, 2);
    assert.equal(refused.stdout, '');
    assert.equal(
      refused.stderr,
      `qks pki issue: sae-a3 already has a certificate (serial ${a3.serial}); pass --replace to replace it and revoke the old one\n`,
    );
    assert.equal(readFileSync(a3.cert, 'utf8'), readFileSync(old.cert, 'utf8'), 'the files are untouched');
    assert.equal(await statusAt('kme-a', old, 'sae-b1'), 200, 'the old certificate is still served');

    const replaced = issue(deployment.dir, '--sae', 'sae-a3', '--replace');
    assert.equal(replaced.status, 0, replaced.stderr);
    const renewed = JSON.parse(replaced.stdout) as Issued;
    assert.deepEqual(renewed.revoked, [a3.serial]);
    assert.equal(renewed.kme, 'kme-a', 'the KME it is registered at');
    assert.deepEqual(renewed.added_to, [], 'listed already');
    assert.notEqual(renewed.serial, a3.serial);
    // A handshake verified just before the list changed is closed instead: asked again.
    const oldStatus = () => statusAt('kme-a', old, 'sae-b1').catch(() => 0);
    await eventually(async () => (await oldStatus()) === 401, 10_000, 'the old one refused');
    assert.equal(await statusAt('kme-a', renewed, 'sae-b1'), 200, 'the new one works');
    a3 = renewed;
  });

  // `script` (util-linux's bsdutils, essential in Debian) gives the command a terminal.
  it('on a terminal, asks whether to replace; no keeps the certificate', async () => {
    const command = [process.execPath, BIN, 'pki', 'issue', '--dir', deployment.dir, '--sae', 'sae-a3']
      .map((a) => `'${a}'`)
      .join(' ');
    const run = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', input: 'n\n' });
    assert.equal(run.status, 1, run.stdout);
    assert.ok(
      run.stdout.includes(
        `sae-a3 already has a certificate (serial ${a3.serial}); replace it and revoke the old one? [y/N] `,
      ),
      run.stdout,
    );
    assert.match(run.stdout, /qks pki issue: sae-a3: nothing changed/);
    assert.equal(await statusAt('kme-a', a3, 'sae-b1'), 200, 'still served');
  });

  it('an SAE removed from the list is refused; an invalid file or other settings change nothing', async () => {
    const file = config('kme-a').file;
    const write = (json: unknown) => {
      writeFileSync(`${file}.tmp`, JSON.stringify(json, null, 2) + '\n');
      renameSync(`${file}.tmp`, file);
    };
    const original = readJson(file) as { saes: Array<{ id: string }>; log_level: string };
    const without = { ...original, saes: original.saes.filter((s) => s.id !== 'sae-a3') };
    const log = join(deployment.dir, 'kme-a.out');
    const logged = (msg: string) => readFileSync(log, 'utf8').includes(`"msg":"${msg}"`);

    // An SAE named twice: refused as at start, and the list stays.
    write({ ...original, saes: [...original.saes, { id: 'sae-a1', kme: 'kme-a' }] });
    await eventually(() => logged('configuration not reloaded; the SAE list stays'), 10_000, 'the refusal logged');
    assert.equal(await statusAt('kme-a', a3, 'sae-b1'), 200);

    write({ ...without, log_level: 'debug' });
    await eventually(async () => (await statusAt('kme-a', a3, 'sae-b1')) === 401, 10_000, 'sae-a3 refused');
    // The KME's log reaches its file within 100 ms.
    await eventually(() => logged('configuration changed: these settings need a restart'), 10_000, 'restart logged');
    const restart = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"configuration changed: these settings need a restart"'))
      .map((l) => (JSON.parse(l) as { settings: string[] }).settings);
    assert.deepEqual(restart, [['log_level']]);
    // kme-b still knows it until its own file says otherwise.
    assert.equal(await statusAt('kme-b', sae('sae-b1'), 'sae-a3'), 200);
    const other = config('kme-b').file;
    writeFileSync(other, JSON.stringify({ ...readJson(other), saes: without.saes }, null, 2) + '\n');
    await eventually(
      async () => (await statusAt('kme-b', sae('sae-b1'), 'sae-a3')) === 400,
      10_000,
      'unknown at kme-b',
    );
  });
});

describe('qks pki issue --sae in a directory without KME configurations', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-pki-bare-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('issues the certificate and says what to add where', () => {
    assert.equal(spawnSync(process.execPath, [BIN, 'pki', 'create-ca', '--dir', dir]).status, 0);
    const run = issue(dir, '--sae', 'sae-x1');
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as Issued;
    assert.equal(out.kme, null);
    assert.equal(out.listed_in, undefined);
    assert.equal(
      out.note,
      `no KME configuration in ${dir}: add {"id":"sae-x1","kme":"<KME ID>"} to "saes" in every KME's configuration`,
    );
  });
});
