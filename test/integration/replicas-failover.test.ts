import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts } from '../../src/cli/ports.js';
import { Haproxy } from '../helpers/haproxy.js';
import { KeyLedger } from '../helpers/key-ledger.js';
import { postgresSkip, startPrimaryWithStandby } from '../helpers/postgres.js';
import { ReplicaLab } from '../helpers/replica-lab.js';
import { trafficDuring } from '../helpers/replica-traffic.js';

// Losing the database primary: PostgreSQL with a synchronous standby (remote_apply) behind one
// address (HAProxy: the primary, the standby as backup), two KME replicas per site on it. The
// primary is killed with SIGKILL under load and the standby promoted; replicas die too. No key a
// master received may be lost for its slave, and none may be delivered twice.

/** One address for the database: the primary while it answers, then the standby. */
const postgresFront = (port: number, primary: number, standby: number) =>
  [
    'global',
    '    log stdout format raw local0 info',
    'defaults',
    '    mode tcp',
    '    log global',
    '    timeout connect 1s',
    '    timeout client 1h',
    '    timeout server 1h',
    '    default-server inter 300ms fall 2 rise 2 on-marked-down shutdown-sessions',
    'frontend postgres',
    `    bind 127.0.0.1:${port}`,
    '    default_backend postgres',
    'backend postgres',
    `    server primary 127.0.0.1:${primary} check`,
    `    server standby 127.0.0.1:${standby} check backup`,
    '',
  ].join('\n');

describe(
  'KME replicas when the database primary is killed and its synchronous standby promoted',
  postgresSkip(),
  () => {
    let ha: Awaited<ReturnType<typeof startPrimaryWithStandby>>;
    let front: Haproxy;
    let dir: string;
    const lab = new ReplicaLab();

    before(async () => {
      ha = await startPrimaryWithStandby();
      dir = mkdtempSync(join(tmpdir(), 'qks-pg-front-'));
      const [port] = await freePorts(1);
      const file = join(dir, 'haproxy-postgres.cfg');
      writeFileSync(file, postgresFront(port!, ha.primary.port, ha.standby.port));
      front = await Haproxy.run(file, [{ host: '127.0.0.1', port: port! }]);
      await lab.start({
        // Each KME's database is made on the primary (and so on the standby); the KMEs use the front.
        postgres: async () => {
          const url = new URL(await ha.primary.createDatabase());
          url.port = String(port);
          return url.toString();
        },
        leaseMs: 1000,
        rateBps: 200_000,
      });
    });
    after(async () => {
      await lab.stop();
      await front?.stop();
      await ha?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('loses no answered request and delivers nothing twice', async () => {
      const ledger = new KeyLedger();
      const pairs = [
        { master: 'sae-a1', slave: 'sae-b1' },
        { master: 'sae-b2', slave: 'sae-a2' },
      ];
      let afterPromotion = 0;
      const { answered, unfetched } = await trafficDuring(lab, pairs, ledger, async () => {
        await sleep(2000);
        await ha.primary.kill9();
        // A replica dies with the primary: its reservations in flight must not become anyone's keys.
        await lab.procs.kill('kme-a-r1');
        await sleep(800);
        await ha.promote();
        await lab.procs.start('kme-a-r1');
        const before = ledger.keyCount;
        await sleep(3000);
        afterPromotion = ledger.keyCount - before;
      });
      assert.deepEqual(unfetched, [], 'every key a master received reached its slave');
      assert.deepEqual(ledger.problems, []);
      assert.ok(answered >= 6, `masters got keys (${answered} answers)`);
      assert.ok(afterPromotion > 0, 'keys flow again on the promoted standby');
      const recovery = await ha.standby.sql<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      assert.equal(recovery[0]!.r, false, 'the standby is the primary now');
    });
  },
);
