import { BOTH_WAYS } from '../helpers/key-traffic.js';
import { describeChaos, SMALL_FRAMES } from './chaos-suite.js';

/** The QKD link simulator by default (kills land in its frames); QKS_CHAOS_SOURCE=simulated for the shared-seed source. */
const simulated = process.env['QKS_CHAOS_SOURCE'] === 'simulated';

describeChaos({
  title: 'chaos: KMEs on a QKD link killed at random and restarted, under load both ways',
  kmes: ['kme-a', 'kme-b'],
  pairs: BOTH_WAYS,
  sites: simulated ? { source: 'simulated', rateBps: 30_000 } : { source: 'qkd', qkd: SMALL_FRAMES },
  warmKeys: 40,
});
