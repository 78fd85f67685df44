import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const inCi = !!process.env['CI'] && process.env['CI'] !== 'false';

/** Why SoftHSM2 cannot be used here, or undefined if it can. */
function missing(): string | undefined {
  const parts = [SOFTHSM_MODULE, '/usr/bin/softhsm2-util'].filter((f) => !existsSync(f));
  return parts.length ? `missing ${parts.join(', ')} (the test script installs softhsm2)` : undefined;
}

/** For describe(): skip without SoftHSM2 on a workstation; in CI a missing SoftHSM2 fails (see requireSoftHsm). */
export const softHsmSkip = (): string | false => (!inCi && missing()) || false;

/** A SoftHSM2 token of its own in a temporary folder, with its own SOFTHSM2_CONF. */
export interface TestToken {
  readonly dir: string;
  readonly module: string;
  readonly label: string;
  readonly pin: string;
  /** SOFTHSM2_CONF for processes that use this token. */
  readonly env: { SOFTHSM2_CONF: string };
  remove(): void;
}

/** Initializes a fresh token (softhsm2-util --init-token) and points this process's SOFTHSM2_CONF at it. */
export function createTestToken(label = 'qks-test'): TestToken {
  const why = missing();
  if (why) throw new Error(`SoftHSM2 tests cannot run: ${why}`);
  const dir = mkdtempSync(join(tmpdir(), 'qks-softhsm-'));
  const conf = join(dir, 'softhsm2.conf');
  execFileSync('mkdir', ['-p', join(dir, 'tokens')]);
  writeFileSync(conf, `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { SOFTHSM2_CONF: conf };
  const pin = '4711-test';
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', '5678-test'], {
    env: { ...process.env, ...env },
    stdio: 'ignore',
  });
  process.env['SOFTHSM2_CONF'] = conf;
  return { dir, module: SOFTHSM_MODULE, label, pin, env, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
