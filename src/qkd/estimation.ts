import { h2, vacuumWeakBounds } from './decoy.js';

/**
 * Parameter estimation of one frame and the length of its secret key. The finite-size treatment
 * is that of Ma et al. (2005, §VII): every measured gain and error rate is replaced by its bound
 * `nSigma` standard deviations away, in the direction that lowers the key; then the leftover hash
 * lemma's 2·log2(1/ε_PA) and every disclosed bit are taken off. docs/qkd-link.md discusses what
 * this does and does not prove.
 */
export interface FrameCounts {
  /** Pulses sent of each class (signal, decoy, vacuum) in the frame. */
  readonly pulses: readonly [number, number, number];
  /** Detections of each class, in either basis. */
  readonly clicks: readonly [number, number, number];
  /** Bits compared (disclosed) and errors found among them, of each class. */
  readonly compared: readonly [number, number, number];
  readonly errors: readonly [number, number, number];
}

export interface Estimate {
  /** QBER of signal pulses, from the disclosed sample. */
  readonly qber: number;
  readonly qberUpper: number;
  /** Bounds on the single-photon yield and error rate. */
  readonly y1Lower: number;
  readonly e1Upper: number;
  /** Lower bound on the fraction of signal detections that came from single photons. */
  readonly singlePhotonFraction: number;
}

export interface EstimationSettings {
  readonly mu: number;
  readonly nu: number;
  readonly nSigma: number;
}

const rateBounds = (k: number, n: number, nSigma: number) => {
  const p = n > 0 ? k / n : 0;
  const d = n > 0 ? (nSigma * Math.sqrt(Math.max(k, 1))) / n : 0;
  return { p, lo: Math.max(0, p - d), hi: p + d };
};

/** Gains, error rates and the decoy-state bounds, with fluctuations. */
export function estimate(c: FrameCounts, s: EstimationSettings): Estimate {
  const qMu = rateBounds(c.clicks[0], c.pulses[0], s.nSigma);
  const qNu = rateBounds(c.clicks[1], c.pulses[1], s.nSigma);
  const y0 = rateBounds(c.clicks[2], c.pulses[2], s.nSigma);
  const eMu = binomialBounds(c.errors[0], c.compared[0], s.nSigma);
  const eNu = binomialBounds(c.errors[1], c.compared[1], s.nSigma);
  const { y1, e1 } = vacuumWeakBounds(
    { mu: s.mu, nu: s.nu, qMu: qMu.hi, eMu: eMu.hi, qNu: qNu.lo, eNu: eNu.hi, y0: y0.hi },
    y0.lo,
  );
  // e1 used qNu low in its denominator's Y1 but needs eNu·qNu high in its numerator.
  const e1Upper = y1 > 0 ? Math.min(0.5, (eNu.hi * qNu.hi * Math.exp(s.nu) - 0.5 * y0.lo) / (y1 * s.nu)) : 0.5;
  const single = qMu.hi > 0 ? Math.min(1, (y1 * s.mu * Math.exp(-s.mu)) / qMu.hi) : 0;
  return {
    qber: eMu.p,
    qberUpper: eMu.hi,
    y1Lower: y1,
    e1Upper: Math.max(e1, e1Upper),
    singlePhotonFraction: single,
  };
}

function binomialBounds(k: number, n: number, nSigma: number) {
  if (n === 0) return { p: 0.5, lo: 0, hi: 0.5 };
  const p = k / n;
  const d = nSigma * Math.sqrt(Math.max(p * (1 - p), 1 / n) / n);
  return { p, lo: Math.max(0, p - d), hi: Math.min(0.5, p + d) };
}

/**
 * Secret bits extractable from `n` reconciled bits of signal pulses, after `disclosed` bits went
 * over the public channel (error correction and verification):
 * ℓ = n·Δ1·(1 − h(e1)) − disclosed − 2·log2(1/ε_PA), rounded down.
 */
export function secretLength(e: Estimate, n: number, disclosed: number, epsilonPa: number): number {
  const l = n * e.singlePhotonFraction * (1 - h2(e.e1Upper)) - disclosed - 2 * Math.log2(1 / epsilonPa);
  return l > 0 ? Math.floor(l) : 0;
}

/** Reconciliation efficiency f = disclosed / (n · h(QBER)), with the frame's true error rate. */
export function efficiency(disclosed: number, n: number, errors: number): number {
  const h = h2(errors / n);
  return h > 0 ? disclosed / (n * h) : 0;
}
