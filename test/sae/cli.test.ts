import assert from 'node:assert/strict';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

describe('qks sae against the demo network', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-sae-cli-'));
  const manifest = join(dir, 'manifest.json');
  const children: ChildProcess[] = [];
  const qks = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'sae', ...args, '--manifest', manifest], { encoding: 'utf8' });
  const json = (out: string) => JSON.parse(out) as Record<string, unknown>;

  before(async () => {
    children.push(
      spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifest], { stdio: 'ignore' }),
    );
    await eventually(() => existsSync(manifest), 30_000, 'the demo');
    await eventually(
      () => (json(qks('status', '--sae', 'sae-a1', '--slave', 'sae-b1').stdout)['stored_key_count'] as number) > 20,
      30_000,
    );
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('status, get-key and get-key-with-ids print JSON; key bytes only with --show-keys', () => {
    const status = json(qks('status', '--sae', 'sae-a1', '--slave', 'sae-b1').stdout);
    assert.equal(status['target_KME_ID'], 'kme-b');
    const hidden = json(qks('get-key', '--sae', 'sae-a1', '--slave', 'sae-b1', '--number', '2').stdout) as {
      keys: Array<{ key_ID: string; key: string }>;
    };
    assert.equal(hidden.keys.length, 2);
    assert.ok(
      hidden.keys.every((k) => !/^[A-Za-z0-9+/]{43}=$/.test(k.key)),
      'no key bytes without --show-keys',
    );
    const shown = json(
      qks(
        'get-key-with-ids',
        '--sae',
        'sae-b1',
        '--master',
        'sae-a1',
        '--key-id',
        hidden.keys[0]!.key_ID,
        '--key-id',
        hidden.keys[1]!.key_ID,
        '--show-keys',
      ).stdout,
    ) as { keys: Array<{ key: string }> };
    assert.ok(shown.keys.every((k) => Buffer.from(k.key, 'base64').length === 32));
    const refused = qks('get-key', '--sae', 'sae-a1', '--slave', 'sae-b1', '--size', '7');
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /size shall be a multiple of 8/);
  });

  it('agree: responder and initiator processes print the same key IDs, no key bytes', async () => {
    const [port] = await freePorts(1);
    const responder = spawn(process.execPath, [
      BIN,
      'sae',
      'agree',
      '--role',
      'responder',
      '--manifest',
      manifest,
      '--sae',
      'sae-b1',
      '--peer',
      'sae-a1',
      '--listen',
      `127.0.0.1:${port}`,
    ]);
    children.push(responder);
    const lines: Array<Record<string, unknown>> = [];
    let raw = '';
    createInterface({ input: responder.stdout! }).on('line', (l) => {
      raw += l;
      lines.push(json(l));
    });
    await eventually(() => lines.some((l) => l['event'] === 'listening'), 30_000, 'the responder');
    const init = qks(
      'agree',
      '--role',
      'initiator',
      '--sae',
      'sae-a1',
      '--peer',
      'sae-b1',
      '--connect',
      `127.0.0.1:${port}`,
      '--once',
      '--number',
      '2',
    );
    assert.equal(init.status, 0, init.stderr);
    const mine = json(init.stdout);
    await eventually(() => lines.some((l) => l['event'] === 'agreed'), 30_000, 'the responder to agree');
    const theirs = lines.find((l) => l['event'] === 'agreed')!;
    assert.deepEqual(theirs['key_IDs'], mine['key_IDs']);
    assert.equal((mine['key_IDs'] as string[]).length, 2);
    assert.ok(!('keys' in mine) && !('keys' in theirs), 'no key bytes without --show-keys');
    assert.ok(!/[A-Za-z0-9+/]{43}=/.test(init.stdout + raw));
    responder.kill('SIGTERM');
  });

  /** A long-running `qks sae agree` and the JSON lines it prints. */
  function agreeProcess(args: string[]) {
    const child = spawn(process.execPath, [BIN, 'sae', 'agree', '--manifest', manifest, ...args]);
    children.push(child);
    const events: Array<Record<string, unknown>> = [];
    createInterface({ input: child.stdout! }).on('line', (l) => events.push(json(l)));
    const agreed = () => events.filter((e) => e['event'] === 'agreed').map((e) => (e['key_IDs'] as string[])[0]!);
    return { child, events, agreed };
  }

  interface SecretsDoc {
    format: string;
    sae_ID: string;
    peer_SAE_ID: string;
    current_key_ID: string | null;
    keys: Array<{ key_ID: string; key_hex: string; agreed_at: string }>;
  }
  const readSecrets = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as SecretsDoc;

  async function agreeingPair(initiatorArgs: string[]) {
    const [port] = await freePorts(1);
    const sub = mkdtempSync(join(dir, 'agree-'));
    const files = { initiator: join(sub, 'a1.json'), responder: join(sub, 'b1.json') };
    const responder = agreeProcess(
      ['--role', 'responder', '--sae', 'sae-b1', '--peer', 'sae-a1'].concat([
        '--listen',
        `127.0.0.1:${port}`,
        '--secrets-file',
        files.responder,
      ]),
    );
    await eventually(() => responder.events.some((e) => e['event'] === 'listening'), 30_000, 'the responder');
    const initiator = agreeProcess(
      ['--role', 'initiator', '--sae', 'sae-a1', '--peer', 'sae-b1'].concat([
        '--connect',
        `127.0.0.1:${port}`,
        '--secrets-file',
        files.initiator,
        ...initiatorArgs,
      ]),
    );
    await eventually(() => initiator.agreed().length >= 1 && existsSync(files.responder), 30_000, 'a first key');
    return { sub, files, responder, initiator };
  }

  it('agree with rotation: two processes keep the same current key, secrets files 0600 and atomic', async () => {
    const { sub, files, responder, initiator } = await agreeingPair(['--rotate-every', '1']);
    // The first generation of the initiator's file, held open: a rename puts a new file in its
    // place and leaves this one whole and unlinked; a rewrite in place would change it.
    await eventually(() => existsSync(files.initiator), 30_000, "the initiator's file");
    const early = openSync(files.initiator, 'r');
    const earlyText = readFileSync(early, 'utf8');
    let samples = 0;
    // Sampled until four keys have come (one about every 0.8 s when the machine is idle), however
    // long a busy machine takes.
    const deadline = Date.now() + 60_000;
    while (initiator.agreed().length < 4 || samples < 20) {
      assert.ok(Date.now() < deadline, `only ${initiator.agreed().length} keys in 60 s`);
      // Each read sees a whole document (a partial write would not parse): files are replaced by rename.
      const mine = readSecrets(files.initiator);
      const theirs = readSecrets(files.responder);
      for (const [path, doc, sae, peer] of [
        [files.initiator, mine, 'sae-a1', 'sae-b1'],
        [files.responder, theirs, 'sae-b1', 'sae-a1'],
      ] as const) {
        assert.equal(statSync(path).mode & 0o777, 0o600, `${path} is mode 0600`);
        assert.deepEqual([doc.format, doc.sae_ID, doc.peer_SAE_ID], ['qks-sae-keys/1', sae, peer]);
        assert.ok(doc.keys.every((k) => /^[0-9a-f]{64}$/.test(k.key_hex) && !Number.isNaN(Date.parse(k.agreed_at))));
      }
      // The two processes write their files one after the other: read between the two writes, one
      // file is a key ahead. Both are read again until they show the same current key.
      let pair = { mine, theirs };
      await eventually(
        () => {
          pair = { mine: readSecrets(files.initiator), theirs: readSecrets(files.responder) };
          return pair.mine.current_key_ID === pair.theirs.current_key_ID;
        },
        30_000,
        'both files at the same key',
      );
      const current = pair.mine.keys.find((k) => k.key_ID === pair.mine.current_key_ID);
      assert.ok(current, `the initiator's file holds its current key ${pair.mine.current_key_ID}`);
      const there = pair.theirs.keys.find((k) => k.key_ID === current.key_ID);
      assert.ok(there, `the responder's file holds the initiator's current key ${current.key_ID}`);
      assert.ok(there.key_hex === current.key_hex, 'with the same bytes');
      samples++;
      await new Promise((r) => setTimeout(r, 50));
    }
    const ids = initiator.agreed();
    await eventually(() => responder.agreed().length >= ids.length, 30_000, 'the responder to report every key');
    assert.deepEqual(responder.agreed().slice(0, ids.length), ids, 'the same keys, in order');
    try {
      const now = Buffer.alloc(earlyText.length + 1);
      const size = readSync(early, now, 0, now.length, 0);
      assert.equal(now.toString('utf8', 0, size), earlyText, 'the first file, held open, is unchanged');
      assert.equal(fstatSync(early).nlink, 0, 'and no longer in the directory: replaced by rename');
      assert.notEqual(readSecrets(files.initiator).current_key_ID, JSON.parse(earlyText).current_key_ID);
    } finally {
      closeSync(early);
    }
    assert.deepEqual(readdirSync(sub).sort(), ['a1.json', 'b1.json'], 'no temporary file left behind');
    const printed = initiator.events
      .concat(responder.events)
      .map((e) => JSON.stringify(e))
      .join('\n');
    assert.ok(!readSecrets(files.initiator).keys.some((k) => printed.includes(k.key_hex)), 'no key bytes printed');
    initiator.child.kill('SIGTERM');
    responder.child.kill('SIGTERM');
  });

  it('agree: SIGHUP to the initiator agrees a new key at once', async () => {
    const { files, responder, initiator } = await agreeingPair(['--rotate-every', '3600']);
    const first = initiator.agreed()[0]!;
    initiator.child.kill('SIGHUP');
    // "At once" is: long before the hour the rotation is set to; how soon depends on the machine's load.
    await eventually(() => initiator.agreed().length === 2, 30_000, 'a key on SIGHUP');
    const second = initiator.agreed()[1]!;
    assert.notEqual(second, first);
    await eventually(() => readSecrets(files.responder).current_key_ID === second, 30_000, 'the responder to follow');
    await eventually(() => readSecrets(files.initiator).current_key_ID === second, 30_000, 'the initiator file');
    assert.ok(responder.agreed().includes(second));
    initiator.child.kill('SIGTERM');
    assert.equal(await new Promise((r) => initiator.child.once('exit', r)), 0, 'SIGHUP did not end it');
    responder.child.kill('SIGTERM');
  });

  it('agree refuses --rotate-uses: nothing in qks sae agree uses the keys', () => {
    const run = qks('agree', '--role', 'initiator', '--sae', 'sae-a1', '--peer', 'sae-b1', '--rotate-uses', '5');
    assert.equal(run.status, 2);
    assert.match(run.stderr, /unknown option --rotate-uses for qks sae agree; qks tunnel\|stunnel takes it/);
  });

  it('refuses bad usage with a clear message', () => {
    const run = spawnSync(process.execPath, [BIN, 'sae', 'get-key', '--sae', 'sae-a1'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /give --manifest, or --kme/);
  });
});
