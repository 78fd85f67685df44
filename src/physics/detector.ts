import { expected, keyRate, vacuumWeakBounds } from '../qkd/decoy.js';
import type { LinkPhysics } from './link-model.js';

/**
 * Bob's two detectors (one per bit value; the basis is chosen actively before them), with the two
 * effects that limit real InGaAs/InP single-photon avalanche diodes at high count rates:
 *
 * - **Dead time** τ, non-paralyzable: after a click a detector is blind for τ·repetitionRate pulses
 *   (photons and dark counts then make no click and do not extend it). With R would-be clicks per
 *   second on a detector it keeps a fraction 1/(1 + Rτ) of them (Rogers et al., "Detector dead-time
 *   effects and paralyzability in high-speed quantum key distribution", New J. Phys. 9, 319 (2007)).
 * - **Afterpulsing**: charge trapped in an avalanche is released later and fires the same detector
 *   again. Modelled as one false click, with probability p_ap, in the first gate after the dead time
 *   (the hold-off exists to let most traps empty first). It is a click of the detector that fired, so
 *   its bit is that detector's, uncorrelated with Alice's: it errs half the time in the sifted key.
 *
 * Defaults (settings.ts): τ = 1 µs and p_ap = 0.5%. Free-running and fast-gated InGaAs/InP SPADs
 * run with hold-offs of about 1–10 µs and afterpulse probabilities of one to a few per cent (Zhang et
 * al., "Advances in InGaAs/InP single-photon detector systems for quantum communication", Light Sci.
 * Appl. 4, e286 (2015); Yu, Xu, Zhang, "Recent advances in InGaAs/InP single-photon detectors", Meas.
 * Sci. Technol. (2024)). 0.5% is optimistic, chosen so that the default 0.5 s frames still make key:
 * more costs much more in finite frames (docs/qkd-link.md). GYS's η and Y0 come from a 2 MHz gated
 * system, where neither effect matters; at 100 MHz–1 GHz both do.
 *
 * Each frame starts with both detectors live (frames are long against the dead time: by default
 * 5·10^7 pulses against 100).
 */

/** Pulses a detector stays blind after a click. */
export const deadTimePulses = (p: Pick<LinkPhysics, 'deadTimeUs' | 'repetitionRateHz'>): number =>
  Math.round(p.deadTimeUs * 1e-6 * p.repetitionRateHz);

/** Would-be clicks per pulse (both detectors) of a live receiver: the mix of signal, decoy and vacuum gains. */
function incidentPerPulse(p: LinkPhysics): number {
  const pVacuum = 1 - p.pSignal - p.pDecoy;
  return p.pSignal * expected(p, p.mu).gain + p.pDecoy * expected(p, p.nu).gain + pVacuum * p.darkCountProbability;
}

export interface DetectorResponse {
  /** Fraction of pulses at which a given detector is live (the fraction of would-be clicks kept). */
  readonly live: number;
  /** Afterpulse clicks per pulse, both detectors (a background yield with random bits). */
  readonly afterpulseYield: number;
  /** Clicks per pulse, both detectors, afterpulses included. */
  readonly clicksPerPulse: number;
}

/**
 * The detectors' steady state. Per detector, with n = incident/2 would-be clicks per pulse, D dead
 * pulses and c clicks per pulse: a click blinds D pulses, so live = 1 − cD; photons and dark counts
 * click at n·live and afterpulses at p_ap·c, so c = n·live + p_ap·c, c = n / (1 − p_ap + nD).
 */
export function detectorResponse(p: LinkPhysics): DetectorResponse {
  const n = incidentPerPulse(p) / 2;
  const dead = deadTimePulses(p);
  const c = n / (1 - p.afterpulseProbability + n * dead);
  return { live: 1 - c * dead, afterpulseYield: 2 * p.afterpulseProbability * c, clicksPerPulse: 2 * c };
}

/** Gain and QBER Bob observes for pulses of mean photon number μ (0: vacuum), detectors included. */
export function observed(p: LinkPhysics, mu: number, r = detectorResponse(p)): { gain: number; qber: number } {
  const e = expected(p, mu);
  const gain = r.live * e.gain + r.afterpulseYield;
  return { gain, qber: (r.live * e.gain * e.qber + 0.5 * r.afterpulseYield) / gain };
}

/**
 * The asymptotic secret key rate per pulse sent (vacuum + weak decoy bound, Ma et al. 2005, on the
 * observed gains, as the link estimates them; only signal pulses, a fraction pSignal, make key).
 */
export function expectedSecretPerPulse(p: LinkPhysics, f = 1.22): number {
  const r = detectorResponse(p);
  const s = observed(p, p.mu, r);
  const d = observed(p, p.nu, r);
  const y0 = observed(p, 0, r).gain;
  const { y1, e1 } = vacuumWeakBounds({ mu: p.mu, nu: p.nu, qMu: s.gain, eMu: s.qber, qNu: d.gain, eNu: d.qber, y0 });
  return keyRate(s.gain, s.qber, y1, e1, p.mu, f) * p.pSignal;
}
