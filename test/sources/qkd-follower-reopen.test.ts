import assert from 'node:assert/strict';
import { it } from 'node:test';
import { encodeCrumbs, encodeIndices } from '../../src/sources/qkd/wire.js';
import { qkdPair, qkdSettings } from '../helpers/qkd-pair.js';

const SETTINGS = qkdSettings({ distanceKm: 5 }, { framePulses: 1_000_000 });

it("a follower end opened again (at a replica that takes the link over) never repeats Bob's choices for a frame number", async () => {
  const { follower } = qkdPair(SETTINGS);
  // The same photons for frame 0 each time, as a new leader numbering its frames from 0 sends.
  const count = 20_000;
  const indices = Uint32Array.from({ length: count }, (_, i) => i * 50);
  const states = Uint8Array.from({ length: count }, (_, i) => (i * 7) % 4);
  const fibre = {
    link_ID: 'link-a-b',
    frame: 0,
    pulses: SETTINGS.framePulses,
    count,
    indices: encodeIndices(indices),
    states: encodeCrumbs(states),
  };
  const detections = async () => {
    await follower.handle('fibre', fibre);
    const det = await follower.handle('detections', { link_ID: 'link-a-b', frame: 0 });
    return (
      Buffer.from(det['bases'] as Uint8Array).toString('hex') +
      Buffer.from(det['indices'] as Uint8Array).toString('hex')
    );
  };
  follower.start(null, async () => undefined);
  const first = await detections();
  // Within one opening, frame 0 again is measured the same (the receiver's choices derive from the
  // run secret and the frame number): what makes a new run secret at each opening necessary.
  assert.equal(await detections(), first);
  await follower.stop();
  follower.start(null, async () => undefined);
  assert.notEqual(await detections(), first, 'opened again, the end measures with other choices');
  await follower.stop();
});
