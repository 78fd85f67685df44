import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTshark } from '../helpers/tshark.js';

const inCi = !!process.env['CI'] && process.env['CI'] !== 'false';
const exchange = fileURLToPath(new URL('../helpers/pcep-exchange.js', import.meta.url));

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  const tools = ['/usr/bin/tshark', '/usr/bin/text2pcap'].filter((f) => !existsSync(f));
  if (tools.length) return `missing ${tools.join(', ')} (scripts/install-test-deps.sh installs them)`;
  if (spawnSync('ip', ['netns', 'list']).status !== 0) return 'no `ip netns` (iproute2)';
  return undefined;
}

const run = (args: string[], timeout = 30_000) =>
  execFileSync(args[0]!, args.slice(1), { timeout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tsharkRead = (file: string, ...args: string[]) => run(['tshark', '-r', file, ...args]);

describe('PCEP on the wire, decoded by tshark', { skip: !inCi && missing() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-pcep-'));
  const ns = `qks-pcep-${randomBytes(3).toString('hex')}`;
  const pcap = join(dir, 'pcep.pcapng');
  const cleanUp = () => {
    spawnSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  };
  let replies: string[] = [];
  let decoded = '';

  before(async () => {
    const why = missing();
    if (why) throw new Error(`PCEP tshark test cannot run in CI: ${why}`);
    process.once('exit', cleanUp); // a run that dies here leaves no namespace behind
    run(['ip', 'netns', 'add', ns]);
    run(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    const tshark = await startTshark([
      'ip',
      'netns',
      'exec',
      ns,
      'tshark',
      '-i',
      'lo',
      '-f',
      'tcp port 4189',
      '-w',
      pcap,
      '-q',
    ]);
    try {
      replies = run(['ip', 'netns', 'exec', ns, process.execPath, exchange]).trim().split('\n');
    } finally {
      await tshark.stop();
    }
    decoded = tsharkRead(pcap, '-Y', 'pcep', '-V', '-O', 'pcep');
  });
  after(cleanUp);

  it('decodes the Open exchange, Keepalives, both PCReqs with the QKD VENDOR-INFORMATION, both PCReps and Close', () => {
    assert.equal(replies.length, 2);
    // The QE subobjects as sent: capture 1's layout (handle unset), then capture 2's (handle set).
    assert.ok(replies[0]!.endsWith(`674a${'00'.repeat(64)}002002fc03e8000a`));
    assert.match(replies[1]!, /674a4a0e75e803d7[0-9a-f]{108}e3e6052f002002fcffe8000a$/);
    assert.match(decoded, /Message Type: Open \(1\)/);
    assert.match(decoded, /Keepalive: 30\n\s+Deadtime: 120/);
    assert.match(decoded, /Message Type: Keepalive \(2\)/);
    assert.equal(decoded.match(/Message Type: Path Computation Request \(PCReq\) \(3\)/g)?.length, 2);
    assert.match(decoded, /Enterprise Number: Example Enterprise Number for Documentation Use \(32473\)/);
    assert.match(decoded, /Enterprise-Specific Information: 002002fc03e8000a/);
    assert.match(decoded, /Enterprise-Specific Information: 002002fcffe8000a/);
    assert.equal(decoded.match(/Message Type: Path Computation Reply \(PCRep\) \(4\)/g)?.length, 2);
    assert.match(decoded, /Message Type: Close \(7\)/);
  });

  it("prints the ERO's IPv4 subobjects and shows the QE subobject as non-defined subobject 103", () => {
    for (const hop of ['127.0.1.1', '127.0.1.3', '127.0.1.5']) {
      assert.equal(decoded.split(`IPv4 Prefix: ${hop}/32`).length - 1, 2, hop);
    }
    assert.equal(decoded.match(/^\s*Non defined subobject \(103\)$/gm)?.length, 2);
    // tshark's note on it is a protocol warning, not a malformed-packet error.
    assert.equal(decoded.match(/\[Expert Info \(Warning\/Protocol\): Non defined subobject \(103\)\]/g)?.length, 2);
    // The ERO is 4 + 3 * 8 + 74 = 102 bytes: not a multiple of 4, and not padded.
    assert.equal(decoded.match(/Object Class: EXPLICIT ROUTE OBJECT \(ERO\) \(7\)[^]*?Object Length: 102/g)?.length, 2);
  });

  it('finds nothing malformed in the capture', () => {
    assert.equal(tsharkRead(pcap, '-Y', '_ws.malformed').trim(), '');
  });

  it('would call the same ERO malformed if it were zero-padded to a multiple of 4 (why it is not)', () => {
    // The second PCRep again, offline, with its ERO padded from 102 to 104 bytes.
    const rep = Buffer.from(replies[1]!, 'hex');
    const eroAt = 16; // after the common header (4) and the RP (12)
    const padded = Buffer.concat([rep, Buffer.alloc(2)]);
    padded.writeUInt16BE(padded.length, 2);
    padded.writeUInt16BE(rep.readUInt16BE(eroAt + 2) + 2, eroAt + 2);
    const text = join(dir, 'padded.txt');
    writeFileSync(text, `0000 ${padded.toString('hex').replace(/../g, '$& ')}\n`);
    run(['text2pcap', '-q', '-T', '4189,4189', text, join(dir, 'padded.pcap')]);
    const out = tsharkRead(join(dir, 'padded.pcap'), '-V', '-O', 'pcep');
    assert.match(out, /Non defined subobject \(103\)/);
    assert.match(out, /subobject length 0 < 2/);
    assert.notEqual(tsharkRead(join(dir, 'padded.pcap'), '-Y', '_ws.malformed').trim(), '');
  });
});
