import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { KeySource } from '../sources/key-source.js';
import { QkdLink } from '../sources/qkd-link.js';
import { qkdSettingsOf } from '../sources/qkd/settings.js';
import { SimulatedLink } from '../sources/simulated-link.js';
import type { KmeConfig } from './config.js';
import type { PeerStreams } from './peer-stream/client.js';
import { qkdLinkChannel } from './qkd-link-channel.js';

const readSeed = (file: string) => Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');

/** The key source of one link, as its configuration says. */
export function createSource(
  kmeId: string,
  link: KmeConfig['links'][number],
  streams: PeerStreams,
  log: Logger,
): KeySource {
  const src = link.source;
  if (src.type === 'simulated') {
    return new SimulatedLink({
      linkId: link.id,
      seed: readSeed(src.seed_file),
      rateBps: src.rate_bps,
      blockBits: link.block_bits,
      epochMs: src.epoch_ms,
      historyBlocks: 4 * link.capacity_blocks,
    });
  }
  const seed = readSeed(src.seed_file);
  if (seed.length !== 32) throw new Error(`link ${link.id}: seed file must hold 32 bytes in hex`);
  const leader = link.endpoints[0] === kmeId;
  const peer = link.endpoints.find((e) => e !== kmeId)!;
  return new QkdLink({
    linkId: link.id,
    role: leader ? 'leader' : 'follower',
    settings: qkdSettingsOf(src),
    seed,
    blockBits: link.block_bits,
    historyBlocks: 4 * link.capacity_blocks,
    log,
    ...(leader ? { channel: qkdLinkChannel(streams, peer) } : {}),
  });
}
