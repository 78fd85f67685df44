import { CASCADE_VARIANTS, type CascadeVariant } from '../../qkd/cascade-plan.js';
import { GYS } from '../../qkd/decoy.js';
import { checkPhysics, type LinkPhysics } from '../../physics/link-model.js';

/** How one simulated QKD link behaves and post-processes (docs/qkd-link.md). */
export interface QkdSettings {
  readonly physics: LinkPhysics;
  /** Pulses per frame: the unit of estimation, reconciliation and privacy amplification. */
  readonly framePulses: number;
  readonly cascade: CascadeVariant;
  /** Frames whose sampled QBER exceeds this are discarded. */
  readonly qberThreshold: number;
  /** Fraction of sifted signal bits disclosed to estimate the QBER. */
  readonly sampleFraction: number;
  /** Standard deviations for the statistical fluctuation bounds. */
  readonly nSigma: number;
  /** Failure probability of privacy amplification. */
  readonly epsilonPa: number;
}

/** GYS's channel (Ma et al. 2005) at 25 km, 100 MHz, with Ma et al.'s optimal μ. */
export const DEFAULT_QKD: QkdSettings = {
  physics: {
    distanceKm: 25,
    attenuationDbPerKm: GYS.attenuationDbPerKm,
    detectorEfficiency: GYS.detectorEfficiency,
    darkCountProbability: GYS.darkCountProbability,
    misalignment: GYS.misalignment,
    repetitionRateHz: 100e6,
    mu: 0.48,
    nu: 0.05,
    pSignal: 0.7,
    pDecoy: 0.2,
    eveFraction: 0,
  },
  framePulses: 50_000_000,
  cascade: 'yanetal',
  qberThreshold: 0.11,
  sampleFraction: 0.05,
  nSigma: 5,
  epsilonPa: 1e-10,
};

export function checkSettings(s: QkdSettings): string[] {
  const problems = checkPhysics(s.physics);
  if (!(Number.isInteger(s.framePulses) && s.framePulses >= 1000 && s.framePulses <= 4e9)) {
    problems.push('frame_pulses must be an integer in 1000..4e9');
  }
  if (!CASCADE_VARIANTS.includes(s.cascade)) problems.push(`cascade must be one of ${CASCADE_VARIANTS.join(', ')}`);
  if (!(s.qberThreshold > 0 && s.qberThreshold < 0.5)) problems.push('qber_threshold must be in (0, 0.5)');
  if (!(s.sampleFraction > 0 && s.sampleFraction < 1)) problems.push('sample_fraction must be in (0, 1)');
  if (!(s.nSigma >= 0 && s.nSigma <= 20)) problems.push('n_sigma must be in 0..20');
  if (!(s.epsilonPa > 0 && s.epsilonPa < 1)) problems.push('epsilon_pa must be in (0, 1)');
  return problems;
}
