/**
 * An observer's attack on xoshiro128** (the simulator's Prng): every output reveals one state word
 * (the scrambler is invertible), and the state's update is linear over GF(2), so a few consecutive
 * outputs give the whole state and with it every later output. Used to show which seeds of a frame
 * follow from the seeds it publishes.
 */

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
/** b, from the output rotl(b * 5, 7) * 9 (9 and 5 are invertible modulo 2^32). */
const unscramble = (out: number) => Math.imul(rotl(Math.imul(out, 0x38e38e39) >>> 0, 25), 0xcccccccd) >>> 0;

type Word = bigint[];
const xor = (x: Word, y: Word): Word => x.map((m, i) => m ^ y[i]!);

/**
 * The outputs that follow `outputs` (consecutive, from one xoshiro128** stream), `count` of them;
 * undefined when no state gives those outputs (they are not one stream).
 */
export function predictXoshiro(outputs: readonly number[], count: number): number[] | undefined {
  // Each state bit as a set of the unknown initial bits (bit j of the mask: initial bit j of a‖b‖c‖d).
  const word = (w: number): Word => Array.from({ length: 32 }, (_, i) => 1n << BigInt(32 * w + i));
  let [a, b, c, d] = [word(0), word(1), word(2), word(3)];
  const rows: bigint[] = [];
  for (const out of outputs) {
    const known = unscramble(out);
    for (let i = 0; i < 32; i++) rows.push(b[i]! | (BigInt((known >>> i) & 1) << 128n));
    const t = b.map((_, i) => (i >= 9 ? b[i - 9]! : 0n));
    c = xor(c, a);
    d = xor(d, b);
    b = xor(b, c);
    a = xor(a, d);
    c = xor(c, t);
    d = d.map((_, i) => d[(i + 21) % 32]!);
  }
  // Gauss–Jordan elimination over GF(2).
  const pivots: number[] = [];
  for (let col = 0, r = 0; col < 128; col++) {
    const bit = 1n << BigInt(col);
    const p = rows.findIndex((row, i) => i >= r && (row & bit) !== 0n);
    if (p < 0) return undefined; // too few outputs to pin the state
    [rows[r], rows[p]] = [rows[p]!, rows[r]!];
    for (let i = 0; i < rows.length; i++) if (i !== r && (rows[i]! & bit) !== 0n) rows[i] = rows[i]! ^ rows[r]!;
    pivots.push(r++);
  }
  // Rows left over must read 0 = 0; one reading 0 = 1 means no state fits.
  if (rows.slice(128).some((row) => row !== 0n)) return undefined;
  const bits = pivots.map((r) => Number((rows[r]! >> 128n) & 1n));
  const s = [0, 1, 2, 3].map((w) => bits.slice(32 * w, 32 * w + 32).reduce((x, v, i) => x | (v << i), 0) >>> 0);
  let [sa, sb, sc, sd] = s as [number, number, number, number];
  const next = () => {
    const r = Math.imul(rotl(Math.imul(sb, 5) >>> 0, 7), 9) >>> 0;
    const t = (sb << 9) >>> 0;
    sc = (sc ^ sa) >>> 0;
    sd = (sd ^ sb) >>> 0;
    sb = (sb ^ sc) >>> 0;
    sa = (sa ^ sd) >>> 0;
    sc = (sc ^ t) >>> 0;
    sd = rotl(sd, 11);
    return r;
  };
  for (let i = 0; i < outputs.length; i++) next();
  return Array.from({ length: count }, next);
}
