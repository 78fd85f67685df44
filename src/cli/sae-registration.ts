import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../config/files.js';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, parseConfig } from '../kme/config.js';
import { UserError } from './usage-error.js';

/** An entry of a KME configuration's `saes`: the SAE and the KME that serves it. */
export interface SaeEntry {
  readonly id: string;
  readonly kme: string;
}

/** A KME configuration file of a deployment directory, as written (its relative paths kept). */
interface ConfigFile {
  readonly file: string;
  readonly kme: string;
  readonly json: Record<string, unknown> & { saes: SaeEntry[] };
}

/** `<dir>/manifest.json` as the demo (and `qks init`) write it; only its `saes` are changed here. */
interface ManifestFile {
  readonly file: string;
  readonly json: Record<string, unknown> & { saes?: Array<SaeEntry & { cert: string; key: string }> };
}

/** A request that the deployment's files do not allow (exit code 2, one line, nothing changed). */
export class RegistrationRefused extends UserError {
  override name = 'RegistrationRefused';
}

export interface SaeRegistration {
  /** The configuration files that list the SAE once written, and those changed to list it. */
  readonly listedIn: string[];
  readonly addedTo: string[];
  /** The manifest, when there is one (it then names the SAE's certificate and key). */
  readonly manifest?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new RegistrationRefused(`${file} is not valid JSON (${(err as Error).message}); fix it first`);
  }
}

const writeJsonAtomic = (file: string, value: unknown) =>
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', statSync(file).mode & 0o777);

/**
 * The KME configuration files (`<dir>/<kme>.json`, as `qks init` writes them) and the manifest of a
 * deployment directory, and the SAE registrations they hold.
 */
export class DeploymentFiles {
  readonly dir: string;
  readonly #configs: ConfigFile[];
  readonly #manifest: ManifestFile | undefined;

  constructor(dir: string) {
    this.dir = resolve(dir);
    const manifest = join(this.dir, 'manifest.json');
    const names = existsSync(this.dir) ? readdirSync(this.dir).sort() : [];
    this.#configs = names
      .filter((name) => name.endsWith('.json') && name !== 'manifest.json')
      .map((name) => ({ file: join(this.dir, name), json: readJson(join(this.dir, name)) }))
      .filter((c): c is { file: string; json: ConfigFile['json'] } => isKmeConfig(c.json))
      .map((c) => ({ ...c, kme: c.json['kme_id'] as string }));
    const json = existsSync(manifest) ? readJson(manifest) : undefined;
    if (json !== undefined && !(isObject(json) && (json['saes'] === undefined || Array.isArray(json['saes']))))
      throw new RegistrationRefused(`${manifest} is not a QKS manifest (no saes list); fix it first`);
    this.#manifest = json === undefined ? undefined : { file: manifest, json: json as ManifestFile['json'] };
  }

  /** The IDs of the KMEs whose configuration files are here. */
  get kmes(): string[] {
    return [...new Set(this.#configs.map((c) => c.kme))].sort();
  }

  /** The configuration files that name the ID as an operator (`access.operators`): no SAE. */
  operatorIn(id: string): string[] {
    const operators = (c: ConfigFile) => (isObject(c.json['access']) ? c.json['access']['operators'] : undefined);
    return this.#configs.filter((c) => [operators(c)].flat().includes(id)).map((c) => c.file);
  }

  /** Where the files register the SAE: each distinct KME with the first file that names it there. */
  registrations(sae: string): Array<{ kme: string; file: string }> {
    const found = new Map<string, string>();
    for (const c of this.#configs) {
      const kme = c.json.saes.find((s) => s.id === sae)?.kme;
      if (kme !== undefined && !found.has(kme)) found.set(kme, c.file);
    }
    const kme = this.#manifest?.json.saes?.find((s) => s.id === sae)?.kme;
    if (kme !== undefined && !found.has(kme)) found.set(kme, this.#manifest!.file);
    return [...found].map(([k, file]) => ({ kme: k, file }));
  }

  /**
   * Checks that every configuration stays valid with the SAE added (as the KMEs will check it when
   * they reload), and returns a function that writes them all, and the manifest.
   */
  prepare(sae: SaeEntry): (files: { cert: string; key: string }) => SaeRegistration {
    const next = this.#configs.map((c) => {
      const listed = c.json.saes.some((s) => s.id === sae.id);
      const json = listed ? c.json : { ...c.json, saes: [...c.json.saes, { id: sae.id, kme: sae.kme }] };
      try {
        parseConfig(json, dirname(c.file));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const why = err.message.replace(/^invalid configuration:\s*/, '').replace(/\n\s*/g, '; ');
        throw new RegistrationRefused(`${c.file} is not a valid configuration (${why}); fix it first`);
      }
      return { file: c.file, json, changed: !listed };
    });
    return (files) => {
      for (const c of next) if (c.changed) writeJsonAtomic(c.file, c.json);
      const registration = {
        listedIn: next.map((c) => c.file),
        addedTo: next.filter((c) => c.changed).map((c) => c.file),
      };
      const manifest = this.#manifest;
      if (!manifest) return registration;
      const entry = { id: sae.id, kme: sae.kme, cert: files.cert, key: files.key };
      const saes = manifest.json.saes ?? [];
      const listed = saes.some((s) => s.id === sae.id);
      const updated = listed ? saes.map((s) => (s.id === sae.id ? entry : s)) : [...saes, entry];
      writeJsonAtomic(manifest.file, { ...manifest.json, saes: updated });
      return { ...registration, manifest: manifest.file };
    };
  }
}

/** What tells a KME configuration from other JSON files in the directory. */
function isKmeConfig(json: unknown): json is ConfigFile['json'] {
  return (
    isObject(json) &&
    typeof json['kme_id'] === 'string' &&
    Array.isArray(json['saes']) &&
    json['saes'].every((s) => isObject(s) && typeof s['id'] === 'string' && typeof s['kme'] === 'string')
  );
}
