import { randomFillSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurably } from '../config/files.js';
import type { BarrierKeys } from './barrier-keys.js';
import { CustodyError, type KeyCustody } from './custody/key-custody.js';

/** The data-key directory in a KME's data_dir, when its master key is in an HSM. */
export const DATA_KEYS_FILE = 'data-keys.json';
const FORMAT = 'qks-data-keys/1';

/** One data key on disk: only ever wrapped, and under which KEK. */
interface WrappedEntry {
  kek: string;
  wrapped: string;
}

interface Directory {
  format: typeof FORMAT;
  /** Every KEK this directory has wrapped under and not yet retired: only these are ever destroyed. */
  keks: string[];
  /** `rows`, or `block:<epoch>:<link ID>`. */
  keys: Record<string, WrappedEntry>;
}

/** How many DEKs each KEK wraps in `dataDir`'s directory, read without the token (empty if none yet). */
export function readCensus(dataDir: string): Record<string, number> {
  const file = join(dataDir, DATA_KEYS_FILE);
  if (!existsSync(file)) return {};
  return censusOf(JSON.parse(readFileSync(file, 'utf8')) as Directory);
}

function censusOf(dir: Directory): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(dir.keks.map((k) => [k, 0]));
  for (const e of Object.values(dir.keys)) counts[e.kek] = (counts[e.kek] ?? 0) + 1;
  return counts;
}

/** KEKs are `<key_label>.<generation>`; the highest generation in the token is the current one. */
export const kekName = (label: string, generation: number) => `${label}.${generation}`;

function generationOf(label: string, name: string): number | undefined {
  if (!name.startsWith(`${label}.`)) return undefined;
  const rest = name.slice(label.length + 1);
  return /^[1-9]\d{0,8}$/.test(rest) ? Number(rest) : undefined;
}

/** The current KEK of `label` in `custody` (the highest generation), or undefined if there is none. */
export function currentKek(custody: KeyCustody, label: string): string | undefined {
  let best: number | undefined;
  for (const name of custody.listKeks()) {
    const g = generationOf(label, name);
    if (g !== undefined && (best === undefined || g > best)) best = g;
  }
  return best === undefined ? undefined : kekName(label, best);
}

/** Makes the next KEK of `label`, which is current from now on; returns its name. */
export function createNextKek(custody: KeyCustody, label: string): string {
  const current = currentKek(custody, label);
  const name = kekName(label, current ? generationOf(label, current)! + 1 : 1);
  custody.createKek(name);
  return name;
}

/**
 * Envelope encryption of the barrier's keys: each (link, epoch) key and the row-MAC key is a random
 * data key (DEK), wrapped under the current KEK and kept in data-keys.json, made when first needed.
 * The HSM is called when a DEK is made or first opened in this process; opened DEKs stay in memory.
 * Every change to the file is written durably before the DEK is used, so nothing is sealed under a
 * key the file would lose.
 */
export class EnvelopeKeys implements BarrierKeys {
  readonly #custody: KeyCustody;
  readonly #label: string;
  readonly #file: string;
  readonly #dir: Directory;
  readonly #open = new Map<string, Buffer>();

  constructor(custody: KeyCustody, label: string, dataDir: string) {
    this.#custody = custody;
    this.#label = label;
    this.#file = join(dataDir, DATA_KEYS_FILE);
    this.#dir = existsSync(this.#file)
      ? (JSON.parse(readFileSync(this.#file, 'utf8')) as Directory)
      : { format: FORMAT, keks: [], keys: {} };
    if (this.#dir.format !== FORMAT) throw new CustodyError(`${this.#file}: not a ${FORMAT} file`);
    const current = currentKek(custody, label);
    if (current === undefined) {
      const needed = Object.keys(this.#dir.keys).length;
      if (needed > 0) {
        throw new CustodyError(
          `the token holds no KEK labelled ${label}.N, but ${needed} data keys in ${this.#file} are wrapped under ` +
            `${this.#dir.keks.join(', ')}; is this the right token and key_label?`,
        );
      }
      createNextKek(custody, label);
    }
  }

  blockKey(linkId: string, epoch: number): Buffer {
    return Buffer.from(this.#dek(`block:${epoch}:${linkId}`));
  }

  rowKey(): Buffer {
    return Buffer.from(this.#dek('rows'));
  }

  /** How many DEKs each KEK wraps, as the file says. */
  census(): Record<string, number> {
    return censusOf(this.#dir);
  }

  /** The DEKs not wrapped under the token's current KEK, and that KEK (one call to the token). */
  pending(): { current: string; names: string[] } {
    const current = this.#current();
    return { current, names: Object.keys(this.#dir.keys).filter((n) => this.#dir.keys[n]!.kek !== current) };
  }

  /** Wraps one DEK under `kek` instead, and writes the file before returning. */
  rewrap(name: string, kek: string): void {
    const entry = this.#dir.keys[name];
    if (!entry || entry.kek === kek) return;
    const dek = this.#dek(name);
    this.#dir.keys[name] = { kek, wrapped: this.#custody.wrap(kek, dek).toString('base64') };
    if (!this.#dir.keks.includes(kek)) this.#dir.keks.push(kek);
    this.#save();
  }

  /**
   * Destroys the KEKs this directory used that are not current and wrap none of its DEKs any more;
   * returns their names. A KEK this directory never used (another KME's) is never touched.
   */
  retireUnused(): string[] {
    const current = this.#current();
    const used = new Set(Object.values(this.#dir.keys).map((e) => e.kek));
    const retired = this.#dir.keks.filter((k) => k !== current && !used.has(k));
    if (retired.length === 0) return [];
    const inToken = new Set(this.#custody.listKeks());
    // Destroyed first, then forgotten: a crash between the two leaves a name whose KEK is gone, which
    // the next call forgets; the other order could leave a KEK nothing would ever destroy.
    for (const k of retired) if (inToken.has(k)) this.#custody.destroyKek(k);
    this.#dir.keks = this.#dir.keks.filter((k) => !retired.includes(k));
    this.#save();
    return retired;
  }

  destroy(): void {
    for (const key of this.#open.values()) key.fill(0);
    this.#open.clear();
  }

  #current(): string {
    const current = currentKek(this.#custody, this.#label);
    if (!current) throw new CustodyError(`the token holds no KEK labelled ${this.#label}.N any more`);
    return current;
  }

  #dek(name: string): Buffer {
    const open = this.#open.get(name);
    if (open) return open;
    const entry = this.#dir.keys[name];
    let dek: Buffer;
    if (entry) {
      dek = this.#custody.unwrap(entry.kek, Buffer.from(entry.wrapped, 'base64'));
    } else {
      dek = randomFillSync(Buffer.alloc(32));
      const kek = this.#current();
      this.#dir.keys[name] = { kek, wrapped: this.#custody.wrap(kek, dek).toString('base64') };
      if (!this.#dir.keks.includes(kek)) this.#dir.keks.push(kek);
      this.#save();
    }
    this.#open.set(name, dek);
    return dek;
  }

  #save(): void {
    writeFileDurably(this.#file, JSON.stringify(this.#dir, null, 1) + '\n');
  }
}
