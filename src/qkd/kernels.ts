import { createRequire } from 'node:module';

/**
 * The post-processing kernels written in C (`src/qkd/native/`, built by `npm ci` through
 * node-gyp into `build/Release/`): the steps whose cost is memory traffic and big-number
 * arithmetic, where V8 is several times slower. Loaded on first use, so that code which never
 * runs the QKD link does not need the build. Loading them also keeps glibc's malloc from handing
 * large freed blocks back to the kernel (`src/qkd/native/wipe.c`): a frame's megabyte arrays are
 * then reused instead of faulting in afresh, page by page, every frame.
 */
interface Kernels {
  amplify(x: Uint32Array, n: number, a: Uint8Array, b: Uint8Array, outBits: number): Uint32Array;
  /** The gap code of increasing indices (wire.ts). */
  encodeGaps(indices: Uint32Array): Uint8Array;
  /** Decodes `count` indices below `below` into `out`: a `GapError`, 0 when well formed. */
  decodeGaps(bytes: Uint8Array, count: number, below: number, out: Uint32Array): GapError;
  /** Transmitter.choicesAt's loop, into the four strings; clicks per class. */
  choices(
    firstHalf: number,
    signalBelow: number,
    decoyBelow: number,
    indices: Uint32Array,
    bases: Uint32Array,
    bits: Uint32Array,
    decoys: Uint32Array,
    vacuums: Uint32Array,
  ): [number, number, number];
  /** cascade-shuffle.ts's word permutations and views. */
  permutation(size: number, seed: Uint32Array): Int32Array;
  view(
    key: Uint32Array,
    n: number,
    rows: Int32Array,
    columns: Int32Array,
    rowKey: number,
    columnKey: number,
  ): Uint32Array;
  /** Cascade's corrector (cascade.ts wraps it): a handle, freed by correctorFree or when collected. */
  correctorNew(key: Uint32Array, n: number, specs: Uint32Array, tables: Array<Int32Array | undefined>): unknown;
  correctorAnswers(corrector: unknown, answers: Uint8Array, out: Uint32Array): number;
  correctorState(corrector: unknown, counts: Float64Array, key: Uint32Array | undefined): void;
  correctorFree(corrector: unknown): void;
}

/** What `correctorAnswers` found wrong (kernels.h), when it returns less than 0. */
export const enum CorrectorError {
  WrongCount = -1,
  Inconsistent = -2,
  NoMemory = -3,
}

/** What `decodeGaps` found wrong (kernels.h). */
export const enum GapError {
  None = 0,
  Malformed = 1,
  Outside = 2,
  Trailing = 3,
}

let loaded: Kernels | undefined;

export function kernels(): Kernels {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)('../../../build/Release/qks_native.node') as Kernels;
  } catch (err) {
    throw new Error(
      'QKS native post-processing kernels are not built: run `npm ci` (or `npm run install`), which compiles ' +
        `src/qkd/native/ with node-gyp (needs g++, make and libgmp10): ${(err as Error).message}`,
      { cause: err },
    );
  }
  return loaded;
}
