import { pino } from 'pino';
import { loadControllerConfig } from '../sdn/controller/config.js';
import { startController } from '../sdn/controller/run.js';
import type { CONTROLLER } from './commands.js';
import type { CommandLine } from './parse.js';
import { notifyReady } from './service.js';
import { untilSignal } from './signals.js';
import { UsageError } from './usage-error.js';

export async function controllerCommand({ values }: CommandLine<typeof CONTROLLER.options>): Promise<number> {
  if (!values.config) throw new UsageError('--config FILE is required');
  const log = pino({ name: 'qks-controller' });
  const running = await startController(loadControllerConfig(values.config), log);
  process.stdout.write(`controller API ${running.url}, PCEP ${running.pcep.host}:${running.pcep.port}\n`);
  notifyReady();
  const signal = await untilSignal();
  log.info({ signal }, 'stopping');
  await running.stop();
  return 0;
}
