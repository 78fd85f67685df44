import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyLedger } from '../helpers/key-ledger.js';
import { postgresSkip, startPostgres, type PgServer } from '../helpers/postgres.js';
import { ReplicaLab } from '../helpers/replica-lab.js';
import { trafficDuring } from '../helpers/replica-traffic.js';
import { eventually } from '../helpers/two-kmes.js';

// The QKD link simulator between two KMEs of two replicas each, each site behind a real HAProxy on
// a PostgreSQL database per KME: the leader runs at the replica holding kme-a's link lease, the
// follower end at the kme-b replica its post-processing messages reach (RequestOwner).

const LEASE_MS = 1000;
/** Small frames make key only with ideal detectors (test/qkd/physics.test.ts has the real ones). */
const SMALL_FRAMES = { distance_km: 5, frame_pulses: 5_000_000, dead_time_us: 0, afterpulse_probability: 0 };
const PAIRS = [
  { master: 'sae-a1', slave: 'sae-b1' },
  { master: 'sae-b2', slave: 'sae-a2' },
];

interface SourceInfo {
  readonly description: string;
  readonly stats?: { framesDone: number };
}

describe('the QKD link between KMEs run as replicas', postgresSkip(), () => {
  let pg: PgServer;
  const lab = new ReplicaLab();
  const ledger = new KeyLedger();
  let linkId: string;
  const db = (kme: string) => new URL(lab.urls.get(kme)!).pathname.slice(1);
  /** The replica (`r1`, `r2`) whose lease on the link runs now, if any. */
  const owner = async (kme: string) =>
    (
      await pg.sql<{ holder: string }>(
        `SELECT holder FROM leases WHERE name = '${kme}/link:${linkId}' AND expires > clock_timestamp()`,
        db(kme),
      )
    )[0]?.holder.split(':')[0];
  const lastSeq = async (kme: string) =>
    Number((await pg.sql<{ last_seq: number }>('SELECT last_seq FROM links', db(kme)))[0]?.last_seq ?? -1);
  /** The frames the link's end at one replica has finished, as its info says. */
  const framesAt = async (replica: string) => {
    const sae = replica.startsWith('kme-a') ? 'sae-a1' : 'sae-b1';
    const res = await lab.client(sae, replica).get('/api/v1/information/info');
    assert.equal(res.status, 200, res.text);
    return (res.body as { key_sources: SourceInfo[] }).key_sources[0]!;
  };

  before(async () => {
    pg = await startPostgres();
    await lab.start({ postgres: pg, leaseMs: LEASE_MS, source: 'qkd', qkd: SMALL_FRAMES });
    linkId = lab.deployment.configs[0]!.config.links[0]!.id;
  });
  after(async () => {
    await lab.stop();
    await pg?.stop();
  });

  it('runs each end of the link at one replica per site, and keys agree through HAProxy', async () => {
    await eventually(async () => (await lastSeq('kme-b')) > 8, 60_000, 'the follower site ingests blocks');
    const owners = { a: (await owner('kme-a'))!, b: (await owner('kme-b'))! };
    assert.ok(['r1', 'r2'].includes(owners.a) && ['r1', 'r2'].includes(owners.b), JSON.stringify(owners));
    // Only the owner at the follower site post-processes: the other replica never ran a frame.
    const otherB = lab.processNames('kme-b').find((p) => p !== `kme-b-${owners.b}`)!;
    assert.ok(((await framesAt(`kme-b-${owners.b}`)).stats?.framesDone ?? 0) > 0, 'the owner runs frames');
    const idle = await framesAt(otherB);
    assert.equal(idle.stats?.framesDone ?? 0, 0, `${otherB} ran no frame`);
    assert.match(idle.description, /run by another replica/);
    const { answered, unfetched } = await trafficDuring(lab, PAIRS, ledger, () => sleep(3000));
    assert.deepEqual(unfetched, []);
    assert.deepEqual(ledger.problems, []);
    assert.ok(answered >= 4, `masters got keys (${answered} answers)`);
  });

  it('moves post-processing to the other replica within seconds when either owner is killed, and back when they return and die again', async (t) => {
    const moves: string[] = [];
    /** Kills the link's owner at `kme`; resolves once another replica owns it and blocks flow again. */
    const killOwner = async (kme: string) => {
      const was = (await owner(kme))!;
      const before = { a: await lastSeq('kme-a'), b: await lastSeq('kme-b') };
      const killedAt = Date.now();
      await lab.procs.kill(`${kme}-${was}`);
      await eventually(
        async () => ((await owner(kme)) ?? was) !== was,
        20_000,
        `another replica of ${kme} takes the link`,
      );
      // New blocks at both ends: Alice runs again at kme-a, Bob at kme-b.
      await eventually(
        async () => (await lastSeq('kme-a')) > before.a + 4 && (await lastSeq('kme-b')) > before.b + 4,
        20_000,
        'blocks flow again at both sites',
      );
      const tookMs = Date.now() - killedAt;
      moves.push(`${kme}: ${was} killed, ${await owner(kme)} runs the link and blocks flow ${tookMs} ms later`);
      t.diagnostic(moves.at(-1)!);
      assert.ok(tookMs < 3 * LEASE_MS + 5000, moves.at(-1));
      return `${kme}-${was}`;
    };
    const killed: string[] = [];
    const { answered, unfetched } = await trafficDuring(lab, PAIRS, ledger, async () => {
      await sleep(1000);
      killed.push(await killOwner('kme-a'));
      await sleep(1500);
      killed.push(await killOwner('kme-b'));
      await sleep(1500);
      // Back with both replicas, the link moves back when its owners die again.
      await Promise.all(killed.map((p) => lab.procs.start(p)));
      await killOwner('kme-b');
      await sleep(1000);
      await killOwner('kme-a');
      await sleep(1500);
    });
    assert.deepEqual(unfetched, [], 'every key a master received reached its slave');
    assert.deepEqual(ledger.problems, []);
    assert.ok(answered >= 6, `masters got keys throughout (${answered} answers; ${moves.join('; ')})`);
  });
});
