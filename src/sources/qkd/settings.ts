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

/**
 * GYS's channel (Ma et al. 2005) at 25 km, 100 MHz, with Ma et al.'s optimal μ, and detectors with
 * a 1 µs dead time and 0.5% afterpulsing (InGaAs/InP SPADs, optimistic: src/physics/detector.ts).
 */
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
    deadTimeUs: 1,
    afterpulseProbability: 0.005,
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

/** The `qkd` source of a link in a KME configuration (docs/configuration.md); all but two optional. */
export interface QkdSourceConfig {
  type: 'qkd';
  /** This end's device seed (hex, 32 bytes); each end has its own. */
  seed_file: string;
  distance_km?: number;
  attenuation_db_per_km?: number;
  detector_efficiency?: number;
  dark_count_probability?: number;
  misalignment?: number;
  repetition_rate_hz?: number;
  intensities?: { signal?: number; decoy?: number };
  probabilities?: { signal?: number; decoy?: number };
  eve_fraction?: number;
  dead_time_us?: number;
  afterpulse_probability?: number;
  frame_pulses?: number;
  cascade?: CascadeVariant;
  qber_threshold?: number;
  sample_fraction?: number;
  n_sigma?: number;
  epsilon_pa?: number;
}

const number = { type: 'number' };
const pair = {
  type: 'object',
  properties: { signal: number, decoy: number },
  additionalProperties: false,
};

/** JSON Schema of QkdSourceConfig (ranges are checked by checkSettings, with clearer messages). */
export const QKD_SOURCE_SCHEMA = {
  type: 'object',
  required: ['type', 'seed_file'],
  additionalProperties: false,
  properties: {
    type: { const: 'qkd' },
    seed_file: { type: 'string', minLength: 1 },
    distance_km: number,
    attenuation_db_per_km: number,
    detector_efficiency: number,
    dark_count_probability: number,
    misalignment: number,
    repetition_rate_hz: number,
    intensities: pair,
    probabilities: pair,
    eve_fraction: number,
    dead_time_us: number,
    afterpulse_probability: number,
    frame_pulses: { type: 'integer' },
    cascade: { enum: [...CASCADE_VARIANTS] },
    qber_threshold: number,
    sample_fraction: number,
    n_sigma: number,
    epsilon_pa: number,
  },
} as const;

export function qkdSettingsOf(c: QkdSourceConfig): QkdSettings {
  const d = DEFAULT_QKD;
  const p = d.physics;
  return {
    physics: {
      distanceKm: c.distance_km ?? p.distanceKm,
      attenuationDbPerKm: c.attenuation_db_per_km ?? p.attenuationDbPerKm,
      detectorEfficiency: c.detector_efficiency ?? p.detectorEfficiency,
      darkCountProbability: c.dark_count_probability ?? p.darkCountProbability,
      misalignment: c.misalignment ?? p.misalignment,
      repetitionRateHz: c.repetition_rate_hz ?? p.repetitionRateHz,
      mu: c.intensities?.signal ?? p.mu,
      nu: c.intensities?.decoy ?? p.nu,
      pSignal: c.probabilities?.signal ?? p.pSignal,
      pDecoy: c.probabilities?.decoy ?? p.pDecoy,
      eveFraction: c.eve_fraction ?? p.eveFraction,
      deadTimeUs: c.dead_time_us ?? p.deadTimeUs,
      afterpulseProbability: c.afterpulse_probability ?? p.afterpulseProbability,
    },
    framePulses: c.frame_pulses ?? d.framePulses,
    cascade: c.cascade ?? d.cascade,
    qberThreshold: c.qber_threshold ?? d.qberThreshold,
    sampleFraction: c.sample_fraction ?? d.sampleFraction,
    nSigma: c.n_sigma ?? d.nSigma,
    epsilonPa: c.epsilon_pa ?? d.epsilonPa,
  };
}
