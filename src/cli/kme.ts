import { loadConfig } from '../kme/config.js';
import { startKme } from '../kme/kme.js';
import type { KME } from './commands.js';
import type { CommandLine } from './parse.js';
import { notifyReady } from './service.js';
import { onHangup, untilSignal } from './signals.js';
import { UsageError } from './usage-error.js';

export async function kmeCommand({ values }: CommandLine<typeof KME.options>): Promise<number> {
  if (!values.config) throw new UsageError('--config FILE is required');
  const kme = await startKme(loadConfig(values.config));
  onHangup(() => {
    kme.log.info('SIGHUP: configuration re-read (its SAE list applies now; other settings need a restart)');
    kme.reloadConfig();
  });
  notifyReady();
  const signal = await untilSignal();
  kme.log.info({ signal }, 'stopping');
  await kme.stop();
  return 0;
}
