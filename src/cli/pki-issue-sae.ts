import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { entityUri } from '../auth/tls-identity.js';
import { CertificateAuthority } from '../pki/authority.js';
import { SAE_CA } from './init.js';
import { DeploymentFiles, RegistrationRefused } from './sae-registration.js';
import { UsageError } from './usage-error.js';

export interface IssueSaeOptions {
  /** The deployment directory (`qks init --dir`): `pki/`, `<kme>.json`, maybe `manifest.json`. */
  readonly dir: string;
  readonly sae: string;
  /** The KME that serves the SAE; may be left out when there is one KME, or the SAE is registered. */
  readonly kme?: string | undefined;
  /** Replaces (and revokes) a valid certificate the SAE has, without asking. */
  readonly replace: boolean;
}

/** Asked on a terminal; a non-interactive run is refused instead (`--replace` to go ahead). */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/**
 * `qks pki issue --sae ID [--kme KME] [--replace]`: issues the SAE's certificate and registers the
 * SAE in the `saes` list of every KME configuration in the directory (running KMEs reload it), and
 * in its manifest. Everything is checked before anything is written. Prints what was done (JSON);
 * returns the exit code.
 */
export async function issueSae(opts: IssueSaeOptions): Promise<number> {
  const { sae } = opts;
  const files = new DeploymentFiles(opts.dir);
  const kme = chooseKme(files, sae, opts.kme);
  // Registered only where there are KME configurations to list it in.
  const register = kme === undefined || files.kmes.length === 0 ? undefined : files.prepare({ id: sae, kme });

  const pki = join(files.dir, 'pki');
  const ca = CertificateAuthority.open(pki, SAE_CA);
  const current = ca.list().filter((r) => r.entity === entityUri('sae', sae) && r.revoked_at === null);
  if (current.length > 0 && !opts.replace) {
    const has = `${sae} already has a certificate (serial ${current.map((r) => r.serial).join(', ')})`;
    if (!process.stdin.isTTY)
      throw new RegistrationRefused(`${has}; pass --replace to replace it and revoke the old one`);
    if (!(await confirm(`${has}; replace it and revoke the old one? [y/N] `))) {
      process.stderr.write(`qks pki issue: ${sae}: nothing changed\n`);
      return 1;
    }
  }

  mkdirSync(join(pki, 'saes'), { recursive: true });
  // Server use too: an SAE answers its peer SAEs in the key agreement (docs/sae-agreement.md).
  const req = {
    commonName: sae,
    entity: { kind: 'sae' as const, id: sae },
    client: true,
    server: { dns: [], ips: [] },
  };
  const issued = await ca.issue(req, join(pki, 'saes'), sae);
  // By serial: the new certificate names the same SAE.
  for (const old of current) await ca.revoke({ serial: old.serial });
  const registration = register?.(issued);
  const entry = JSON.stringify({ id: sae, kme: kme ?? '<KME ID>' });
  const out = {
    ...issued,
    sae,
    kme: kme ?? null,
    revoked: current.map((r) => r.serial),
    ...(registration
      ? {
          listed_in: registration.listedIn,
          added_to: registration.addedTo,
          ...(registration.manifest ? { manifest: registration.manifest } : {}),
          note: 'running KMEs reload their saes list within a second; no restart is needed',
        }
      : { note: `no KME configuration in ${files.dir}: add ${entry} to "saes" in every KME's configuration` }),
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  return 0;
}

/**
 * The KME that is to serve the SAE: `--kme`, else the one the files register it at, else the only
 * KME of the directory. Undefined when the directory holds no KME configuration.
 */
function chooseKme(files: DeploymentFiles, sae: string, wanted: string | undefined): string | undefined {
  const known = files.kmes;
  const operator = files.operatorIn(sae);
  if (operator.length > 0)
    throw new RegistrationRefused(`${sae} is an operator (access.operators in ${operator.join(', ')}), not an SAE`);
  const at = files.registrations(sae);
  if (at.length > 1) {
    const where = at.map((r) => `${r.kme} (${r.file})`).join(' and ');
    throw new RegistrationRefused(`${sae} is registered at ${where}; make its saes entries agree first`);
  }
  const registered = at[0]?.kme;
  if (wanted !== undefined) {
    if (known.length > 0 && !known.includes(wanted))
      throw new UsageError(`unknown KME ${wanted}: ${files.dir} has ${known.join(', ')}`);
    if (registered !== undefined && registered !== wanted) {
      throw new RegistrationRefused(
        `${sae} is registered at ${registered}, not ${wanted} (${at[0]!.file}): pass --kme ${registered}, or remove ${sae} from the saes lists first`,
      );
    }
    return wanted;
  }
  if (registered !== undefined || known.length <= 1) return registered ?? known[0];
  throw new UsageError(`which KME serves ${sae}? pass --kme with one of ${known.join(', ')}`);
}
