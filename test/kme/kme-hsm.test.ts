import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Deployment } from '../../src/cli/init.js';
import { Pkcs11Custody } from '../../src/stores/custody/pkcs11-custody.js';
import { DATA_KEYS_FILE, readCensus } from '../../src/stores/envelope-keys.js';
import { PAUSE_AFTER_ENV } from '../../src/stores/kek-rotation.js';
import { KmeProcesses } from '../helpers/kme-process.js';
import { archiveAndCheckLogs, recordDeliveredKeys } from '../helpers/log-leaks.js';
import { TestClient } from '../helpers/sae-client.js';
import { createTestToken, softHsmSkip, type TestToken } from '../helpers/softhsm.js';
import { createDeployment, eventually } from '../helpers/two-kmes.js';

const BIN = fileURLToPath(new URL('../../../bin/qks.js', import.meta.url));
type Keys = { keys: Array<{ key_ID: string; key: string }> };

/** Every file under `dir`, recursively. */
const filesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });

describe('a KME whose master key is a KEK in a SoftHSM2 token', { skip: softHsmSkip() }, () => {
  let token: TestToken;
  let deployment: Deployment;
  let procs: KmeProcesses;
  const clients = new Map<string, TestClient>();
  const env = () => ({ ...token.env, QKS_HSM_PIN: token.pin });
  const configOf = (kme: string) => deployment.configs.find((c) => c.kme === kme)!;
  const dataDir = (kme: string) => configOf(kme).config.data_dir;
  const label = (kme: string) => `qks-${kme}`;
  const qks = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env(), ...extra }, encoding: 'utf8' });
  const client = (sae: string) => {
    let c = clients.get(sae);
    if (!c) {
      const creds = deployment.saes.find((s) => s.id === sae)!;
      const port = configOf(creds.kme).config.sae_api.port;
      c = new TestClient(`https://127.0.0.1:${port}`, { ca: deployment.ca, ...creds });
      clients.set(sae, c);
    }
    return c;
  };
  /** A key from kme-a's SAE (master) to kme-b's; `fetch` false leaves the slave's copy waiting. */
  const enc = async () => {
    const got = await client('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 1 });
    assert.equal(got.status, 200, `enc_keys: ${got.text}`);
    const key = (got.body as Keys).keys[0]!;
    recordDeliveredKeys([key.key]);
    return key;
  };
  const dec = async (key: { key_ID: string; key: string }) => {
    const got = await client('sae-b1').post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: key.key_ID }] });
    assert.equal(got.status, 200, `dec_keys: ${got.text}`);
    assert.equal((got.body as Keys).keys[0]!.key, key.key, 'the slave got the same key');
  };
  const kekList = () => {
    const custody = new Pkcs11Custody({ module: token.module, tokenLabel: token.label, pin: token.pin });
    try {
      return custody.listKeks().sort();
    } finally {
      custody.close();
    }
  };

  before(async () => {
    token = createTestToken();
    const pinFile = join(token.dir, 'pin');
    writeFileSync(pinFile, `${token.pin}\n`, { mode: 0o600 });
    deployment = await createDeployment({
      rateBps: 1_000_000,
      epochMs: Date.now() - 60_000,
      hsm: { module: token.module, tokenLabel: token.label, pinFile },
    });
    for (const { kme, file } of deployment.configs) {
      assert.ok(!existsSync(join(dataDir(kme), 'master.key')), 'qks init --hsm-module writes no master.key');
      const raw = JSON.parse(readFileSync(file, 'utf8')) as { master_key: Record<string, unknown> };
      assert.equal(raw.master_key['key_label'], label(kme));
      raw.master_key['rewrap_interval_ms'] = 200;
      if (kme === 'kme-b') delete raw.master_key['pin_file']; // kme-b reads its PIN from QKS_HSM_PIN
      writeFileSync(file, JSON.stringify(raw, null, 2));
    }
    procs = new KmeProcesses(deployment);
    await procs.start('kme-a', { ...token.env });
    // kme-b re-wraps one data key per process and then stops, to be killed mid-rotation below.
    await procs.start('kme-b', { ...env(), [PAUSE_AFTER_ENV]: '1' });
  });

  after(async () => {
    await procs?.killAll();
    await Promise.all([...clients.values()].map((c) => c.close()));
    if (deployment) {
      try {
        archiveAndCheckLogs(deployment.dir);
      } finally {
        rmSync(deployment.dir, { recursive: true, force: true });
      }
    }
    token?.remove();
  });

  it('serves keys end to end, each KME with its first KEK in the token and its data keys wrapped on disk', async () => {
    for (let i = 0; i < 5; i++) await dec(await enc());
    assert.deepEqual(kekList(), ['qks-kme-a.1', 'qks-kme-b.1']);
    for (const kme of ['kme-a', 'kme-b']) {
      const census = readCensus(dataDir(kme));
      assert.deepEqual(Object.keys(census), [`${label(kme)}.1`]);
      assert.ok(census[`${label(kme)}.1`]! >= 2, 'the row key and at least one block key');
    }
  });

  it('no data key appears in clear anywhere on disk (data dirs, logs, the token)', () => {
    const custody = new Pkcs11Custody({ module: token.module, tokenLabel: token.label, pin: token.pin });
    const deks: Buffer[] = [];
    try {
      for (const kme of ['kme-a', 'kme-b']) {
        const dir = JSON.parse(readFileSync(join(dataDir(kme), DATA_KEYS_FILE), 'utf8')) as {
          keys: Record<string, { kek: string; wrapped: string }>;
        };
        for (const e of Object.values(dir.keys)) deks.push(custody.unwrap(e.kek, Buffer.from(e.wrapped, 'base64')));
      }
    } finally {
      custody.close();
    }
    assert.ok(deks.length >= 4);
    const files = [...filesUnder(deployment.dir), ...filesUnder(token.dir)];
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const dek of deks) {
        for (const form of [dek, Buffer.from(dek.toString('hex')), Buffer.from(dek.toString('base64'))])
          assert.equal(bytes.indexOf(form), -1, `a data key in ${file}`);
      }
    }
  });

  it('rotates the KEK while serving: new KEK current at once, data keys re-wrapped, old KEK destroyed, no request lost', async () => {
    let stop = false;
    let served = 0;
    const traffic = (async () => {
      while (!stop) {
        await dec(await enc());
        served++;
      }
    })();
    const rotated = qks(['master-key', 'rotate', '--config', configOf('kme-a').file]);
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.match(rotated.stdout, /"created": "qks-kme-a.2"/);
    assert.match(rotated.stdout, /by the running KME \(pid \d+\)/);
    await eventually(() => !kekList().includes('qks-kme-a.1'), 15_000, 'the old KEK destroyed');
    stop = true;
    await traffic;
    assert.ok(served > 0);
    await eventually(
      () => Object.keys(readCensus(dataDir('kme-a'))).join() === 'qks-kme-a.2',
      5_000,
      'the directory forgetting the old KEK',
    );
    const status = qks(['master-key', 'status', '--config', configOf('kme-a').file]);
    assert.equal(status.status, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout).keks_in_token, ['qks-kme-a.2']);
    for (let i = 0; i < 3; i++) await dec(await enc());
  });

  it('a KME killed with SIGKILL mid-rotation is left with both KEKs; restarted, it finishes and loses nothing', async () => {
    const waiting = await enc(); // kme-b holds its copy, sealed under data keys of KEK .1
    const rotated = qks(['master-key', 'rotate', '--config', configOf('kme-b').file]);
    assert.equal(rotated.status, 0, rotated.stderr);
    const [old, current] = ['qks-kme-b.1', 'qks-kme-b.2'];
    await eventually(() => (readCensus(dataDir('kme-b'))[current] ?? 0) >= 1, 10_000, 'one data key re-wrapped');
    await procs.kill('kme-b');
    const census = readCensus(dataDir('kme-b'));
    assert.ok(census[old]! >= 1 && census[current]! >= 1, `data keys under each KEK: ${JSON.stringify(census)}`);
    assert.deepEqual(kekList(), ['qks-kme-a.2', old, current]);

    await procs.start('kme-b', env());
    await eventually(() => !kekList().includes(old), 15_000, 'the old KEK destroyed after the restart');
    // The KEK goes first, then the directory forgets it (the other order could leave a KEK behind).
    await eventually(
      () => Object.keys(readCensus(dataDir('kme-b'))).join() === current,
      5_000,
      'the directory forgetting the old KEK',
    );
    await dec(waiting);
    for (let i = 0; i < 3; i++) await dec(await enc());
  });

  it('with the KME stopped, qks master-key rotate re-wraps everything itself; the KME then starts on the new KEK', async () => {
    const waiting = await enc();
    await procs.terminate('kme-a');
    const rotated = qks(['master-key', 'rotate', '--config', configOf('kme-a').file]);
    assert.equal(rotated.status, 0, rotated.stderr);
    const out = JSON.parse(rotated.stdout) as { created: string; rewrapped: number; destroyed: string[]; left: number };
    assert.equal(out.created, 'qks-kme-a.3');
    assert.ok(out.rewrapped >= 2);
    assert.deepEqual([out.destroyed, out.left], [['qks-kme-a.2'], 0]);
    assert.deepEqual(Object.keys(readCensus(dataDir('kme-a'))), ['qks-kme-a.3']);
    await procs.start('kme-a', token.env);
    await dec(waiting);
    for (let i = 0; i < 3; i++) await dec(await enc());
  });

  it('a wrong PIN, a missing PIN and a PIN in the configuration are refused with errors that say so', () => {
    const { file } = configOf('kme-b');
    const wrong = qks(['master-key', 'status', '--config', file], { QKS_HSM_PIN: 'wrong-pin' });
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /master_key: token "qks-test" refused the PIN \(CKR_PIN_INCORRECT\)/);
    const none = qks(['master-key', 'status', '--config', file], { QKS_HSM_PIN: '' });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no PIN; set master_key.pin_file or the QKS_HSM_PIN environment variable/);

    const raw = JSON.parse(readFileSync(file, 'utf8')) as { master_key: Record<string, unknown>; data_dir: string };
    // A KME of its own data_dir (the running kme-b holds the real one), started with a wrong PIN.
    const spare = join(deployment.dir, 'spare-data');
    mkdirSync(spare, { mode: 0o700 });
    const spareConfig = join(deployment.dir, 'spare.json');
    writeFileSync(spareConfig, JSON.stringify({ ...raw, data_dir: spare }));
    const kme = qks(['kme', '--config', spareConfig], { QKS_HSM_PIN: 'wrong-pin' });
    assert.equal(kme.status, 2, kme.stderr);
    assert.match(kme.stderr, /master_key: token "qks-test" refused the PIN \(CKR_PIN_INCORRECT\)/);
    assert.ok(!kme.stderr.includes('wrong-pin'), 'the PIN is not echoed');
    const withPin = join(deployment.dir, 'with-pin.json');
    writeFileSync(withPin, JSON.stringify({ ...raw, master_key: { ...raw.master_key, pin: token.pin } }));
    const refused = qks(['kme', '--config', withPin]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /master_key.pin: the PIN is never read from the configuration/);
    assert.ok(!refused.stderr.includes(token.pin));
  });
});
