import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { entityUri } from '../auth/tls-identity.js';
import { isEntityId } from '../domain/ids.js';
import { CertificateAuthority } from '../pki/authority.js';
import type { PKI } from './commands.js';
import { KME_CA, SAE_CA } from './init.js';
import type { CommandLine } from './parse.js';
import { issueSae } from './pki-issue-sae.js';
import { UsageError, UserError } from './usage-error.js';

export async function pkiCommand({ sub, values: v }: CommandLine<typeof PKI.options>): Promise<number> {
  const command = sub!.name;
  if (!v.dir) throw new UsageError('--dir DIR is required');
  const pki = join(v.dir, 'pki');
  if (command !== 'create-ca') {
    for (const name of [SAE_CA, KME_CA]) {
      const file = join(pki, `${name}.pem`);
      if (!existsSync(file))
        throw new UserError(
          `--dir ${v.dir} holds no deployment (no ${file}); make one with qks init --dir DIR, or its CAs with qks pki create-ca --dir DIR`,
        );
    }
  }
  const ca = (name: string) => CertificateAuthority.open(pki, name);
  const print = (x: unknown) => process.stdout.write(JSON.stringify(x, null, 2) + '\n');
  for (const id of [v.sae, v.kme]) if (id !== undefined && !isEntityId(id)) throw new UsageError(`bad ID: ${id}`);

  switch (command) {
    case 'create-ca': {
      mkdirSync(pki, { recursive: true });
      const made = [];
      for (const [name, cn] of [
        [SAE_CA, 'QKS SAE CA'],
        [KME_CA, 'QKS KME CA'],
      ] as const) {
        if (existsSync(join(pki, `${name}.pem`))) continue;
        made.push((await CertificateAuthority.create(pki, name, cn)).certFile);
      }
      print({ created: made });
      return 0;
    }
    case 'list':
      print({ [SAE_CA]: ca(SAE_CA).list(), [KME_CA]: ca(KME_CA).list() });
      return 0;
    case 'issue': {
      if (v.sae) return issueSae({ dir: v.dir, sae: v.sae, kme: v.kme, replace: v.replace ?? false });
      if (v.kme) {
        mkdirSync(join(pki, v.kme), { recursive: true });
        const host = v.host ?? '127.0.0.1';
        // A name goes into the certificate as a DNS name, an address as an IP address.
        const isAddress = /^[\d.]+$|:/.test(host);
        const server = isAddress
          ? { dns: ['localhost'], ips: [host] }
          : { dns: [...new Set(['localhost', host])], ips: ['127.0.0.1'] };
        const req = { commonName: v.kme, entity: { kind: 'kme' as const, id: v.kme }, client: true, server };
        print(await ca(KME_CA).issue(req, join(pki, v.kme), 'kme-api'));
        return 0;
      }
      throw new UsageError('issue needs --sae ID or --kme ID');
    }
    case 'revoke': {
      const target = v.sae
        ? { entity: entityUri('sae', v.sae) }
        : v.kme
          ? { entity: entityUri('kme', v.kme) }
          : undefined;
      if (target) {
        const authority = ca(v.sae ? SAE_CA : KME_CA);
        if (!authority.list().some((r) => r.revoked_at === null && r.entity === target.entity)) {
          const who = v.sae ? `SAE ${v.sae}` : `KME ${v.kme}`;
          throw new UserError(`${who} has no valid certificate in ${v.dir}; qks pki list --dir ${v.dir} shows them`);
        }
        print(await authority.revoke(target));
        return 0;
      }
      if (!v.serial) throw new UsageError('revoke needs --sae ID, --kme ID or --serial HEX');
      const serial = v.serial.toLowerCase();
      for (const name of [SAE_CA, KME_CA]) {
        const authority = ca(name);
        const record = authority.list().find((r) => r.serial.toLowerCase() === serial);
        if (record?.revoked_at)
          throw new UserError(`the certificate with serial ${v.serial} was revoked at ${record.revoked_at}`);
        if (record) {
          print(await authority.revoke({ serial: record.serial }));
          return 0;
        }
      }
      throw new UsageError(`no certificate with serial ${v.serial}`);
    }
    case 'renew-crl': {
      const names = v.ca === undefined ? [SAE_CA, KME_CA] : v.ca === 'sae' ? [SAE_CA] : v.ca === 'kme' ? [KME_CA] : [];
      if (names.length === 0) throw new UsageError('--ca must be sae or kme');
      if (v.days !== undefined && v.seconds !== undefined) throw new UsageError('give --days or --seconds, not both');
      const lifetimeMs = lifetimeOf(v.days, 86_400_000, '--days') ?? lifetimeOf(v.seconds, 1000, '--seconds');
      const out: Record<string, unknown> = {};
      for (const name of names) {
        const r = await ca(name).renewCrl({ ...(lifetimeMs ? { lifetimeMs } : {}), ifDue: v['if-due'] ?? false });
        out[name] = {
          renewed: r.renewed,
          next_update: r.nextUpdate.toISOString(),
          lifetime_seconds: Math.round(r.lifetimeMs / 1000),
        };
      }
      print(out);
      return 0;
    }
    default:
      throw new Error(`no runner for qks pki ${command}`);
  }
}

function lifetimeOf(text: string | undefined, unitMs: number, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive integer`);
  return n * unitMs;
}
