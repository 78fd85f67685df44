import { QkdLink, type QkdLinkOptions } from '../../src/sources/qkd-link.js';
import { decodeEnvelope, encodeEnvelope, envelopeChannel } from '../../src/sources/qkd/envelope.js';
import { DEFAULT_QKD, type QkdSettings } from '../../src/sources/qkd/settings.js';
import type { LinkPhysics } from '../../src/physics/link-model.js';

/** Settings for tests: the default link with some physics and framing changed. */
export function qkdSettings(physics: Partial<LinkPhysics> = {}, over: Partial<QkdSettings> = {}): QkdSettings {
  return { ...DEFAULT_QKD, framePulses: 2_000_000, ...over, physics: { ...DEFAULT_QKD.physics, ...physics } };
}

/**
 * Two ends of one link in this process. Every message crosses encoded as bytes, as it would between
 * two KMEs, so the ends share no objects.
 */
export function qkdPair(
  settings: QkdSettings,
  over: Partial<Omit<QkdLinkOptions, 'role' | 'settings' | 'channel'>> = {},
): { leader: QkdLink; follower: QkdLink } {
  const base = {
    linkId: 'link-a-b',
    blockBits: 256,
    historyBlocks: 100_000,
    paced: false,
    ...over,
    settings,
  };
  const follower = new QkdLink({ ...base, role: 'follower', seed: Buffer.alloc(32, 0xb0) });
  const leader = new QkdLink({
    ...base,
    role: 'leader',
    seed: Buffer.alloc(32, 0xa1),
    channel: envelopeChannel(async (op, body) => {
      // A turn of the event loop per message, as a socket would take: timers keep running.
      await new Promise((resolve) => setImmediate(resolve));
      return encodeEnvelope(await follower.handle(op, decodeEnvelope(Buffer.concat(body))));
    }),
    ...over,
  });
  return { leader, follower };
}
