import { transmittance, type ChannelParams } from '../qkd/decoy.js';

/** Pulse intensity classes, in the order used on the wire. */
export const SIGNAL = 0;
export const DECOY = 1;
export const VACUUM = 2;

/** Everything the physics of one link needs (docs/qkd-link.md). */
export interface LinkPhysics extends ChannelParams {
  readonly repetitionRateHz: number;
  /** Mean photon numbers of signal and decoy pulses (vacuum pulses carry none). */
  readonly mu: number;
  readonly nu: number;
  /** Probabilities of sending a signal or a decoy pulse; the rest are vacuum. */
  readonly pSignal: number;
  readonly pDecoy: number;
  /** Fraction of pulses an intercept-resend eavesdropper attacks, 0..1. */
  readonly eveFraction: number;
  /** Bob's detectors (detector.ts): dead time after a click, µs, and afterpulse probability per click. */
  readonly deadTimeUs: number;
  readonly afterpulseProbability: number;
}

export function checkPhysics(p: LinkPhysics): string[] {
  const problems: string[] = [];
  const within = (name: string, v: number, lo: number, hi: number) => {
    if (!(Number.isFinite(v) && v >= lo && v <= hi)) problems.push(`${name} must be within ${lo}..${hi}`);
  };
  within('distance_km', p.distanceKm, 0, 1000);
  within('attenuation_db_per_km', p.attenuationDbPerKm, 0, 10);
  within('detector_efficiency', p.detectorEfficiency, 1e-6, 1);
  within('dark_count_probability', p.darkCountProbability, 0, 0.01);
  within('misalignment', p.misalignment, 0, 0.5);
  within('repetition_rate_hz', p.repetitionRateHz, 1, 1e11);
  within('intensities.signal', p.mu, 1e-3, 10);
  within('intensities.decoy', p.nu, 1e-4, 10);
  if (!(p.nu < p.mu)) problems.push('intensities.decoy must be below intensities.signal');
  within('probabilities.signal', p.pSignal, 0.01, 1);
  within('probabilities.decoy', p.pDecoy, 0.001, 1);
  if (!(p.pSignal + p.pDecoy < 1)) problems.push('probabilities: signal + decoy must leave room for vacuum pulses');
  within('eve_fraction', p.eveFraction, 0, 1);
  within('dead_time_us', p.deadTimeUs, 0, 1000);
  within('afterpulse_probability', p.afterpulseProbability, 0, 0.5);
  return problems;
}

/** Probability that a pulse of each class reaches Bob's detector with at least one photon. */
export function arrivalProbabilities(p: LinkPhysics): [number, number, number] {
  const eta = transmittance(p);
  return [1 - Math.exp(-eta * p.mu), 1 - Math.exp(-eta * p.nu), 0];
}
