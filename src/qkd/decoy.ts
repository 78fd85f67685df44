/**
 * Decoy-state BB84 with weak coherent pulses: the channel model and the bounds of Ma, Qi, Zhao and
 * Lo, "Practical decoy state for quantum key distribution", Phys. Rev. A 72, 012326 (2005). Their
 * equation numbers are quoted. Pure functions; rates are per pulse.
 */

/** Binary entropy h(x) in bits. */
export function h2(x: number): number {
  if (x <= 0 || x >= 1) return 0;
  return -x * Math.log2(x) - (1 - x) * Math.log2(1 - x);
}

export interface ChannelParams {
  /** Fibre length, km. */
  readonly distanceKm: number;
  /** Fibre loss, dB/km. */
  readonly attenuationDbPerKm: number;
  /** Bob's transmittance and detector efficiency together (η_Bob). */
  readonly detectorEfficiency: number;
  /** Background (dark count) yield per pulse, Y0. */
  readonly darkCountProbability: number;
  /** Probability that a photon hits the wrong detector (e_detector). */
  readonly misalignment: number;
}

/** GYS parameters (Gobby, Yuan, Shields 2004) as used by Ma et al. 2005, Table I, 1550 nm. */
export const GYS: Omit<ChannelParams, 'distanceKm'> & { readonly f: number } = {
  attenuationDbPerKm: 0.21,
  detectorEfficiency: 0.045,
  darkCountProbability: 1.7e-6,
  misalignment: 0.033,
  f: 1.22,
};

/** Overall transmittance η = η_Bob · 10^(−αL/10) (eq. 2). */
export const transmittance = (c: ChannelParams): number =>
  c.detectorEfficiency * 10 ** ((-c.attenuationDbPerKm * c.distanceKm) / 10);

/** Expected gain Q_μ and QBER E_μ of pulses of mean photon number μ (eqs. 6–7), e0 = 1/2. */
export function expected(c: ChannelParams, mu: number): { gain: number; qber: number } {
  const eta = transmittance(c);
  const signal = 1 - Math.exp(-eta * mu);
  const gain = c.darkCountProbability + signal - c.darkCountProbability * signal;
  return { gain, qber: (0.5 * c.darkCountProbability + c.misalignment * signal) / gain };
}

/** Single-photon yield Y1 and error e1 of the channel itself (eqs. 3–5). */
export function singlePhoton(c: ChannelParams): { y1: number; e1: number } {
  const eta = transmittance(c);
  const y1 = c.darkCountProbability + eta - c.darkCountProbability * eta;
  return { y1, e1: (0.5 * c.darkCountProbability + c.misalignment * eta) / y1 };
}

/** What the decoy-state estimate starts from: gains and error rates by intensity. */
export interface DecoyObservation {
  readonly mu: number;
  readonly nu: number;
  readonly qMu: number;
  readonly eMu: number;
  readonly qNu: number;
  readonly eNu: number;
  /** Vacuum yield Y0 (measured with vacuum pulses). */
  readonly y0: number;
}

/**
 * Vacuum + weak decoy bounds (eqs. 34 and 37): a lower bound on the single-photon yield and an
 * upper bound on the single-photon error rate. Finite-size callers pass bounds that make each
 * term conservative (qNu low, qMu high, y0 high for Y1; eNu·qNu high for e1).
 */
export function vacuumWeakBounds(o: DecoyObservation, y0ForError = o.y0): { y1: number; e1: number } {
  const { mu, nu } = o;
  // The bound is derived for 0 < ν < μ (and is numerically meaningless as μ → ν).
  if (!(nu > 0 && mu - nu >= 1e-3)) return { y1: 0, e1: 0.5 };
  const y1 =
    (mu / (mu * nu - nu * nu)) *
    (o.qNu * Math.exp(nu) - (o.qMu * Math.exp(mu) * nu * nu) / (mu * mu) - ((mu * mu - nu * nu) / (mu * mu)) * o.y0);
  if (!(y1 > 0)) return { y1: 0, e1: 0.5 };
  const e1 = (o.eNu * o.qNu * Math.exp(nu) - 0.5 * y0ForError) / (y1 * nu);
  return { y1, e1: Math.min(0.5, Math.max(0, e1)) };
}

/**
 * GLLP key rate per pulse (eq. 1) with q = 1/2 (BB84 with both bases equally likely):
 * R = q{−Q_μ f H(E_μ) + Q1 [1 − H(e1)]}, Q1 = Y1 μ e^(−μ).
 */
export function keyRate(qMu: number, eMu: number, y1: number, e1: number, mu: number, f: number): number {
  const q1 = y1 * mu * Math.exp(-mu);
  return Math.max(0, 0.5 * (-qMu * f * h2(eMu) + q1 * (1 - h2(e1))));
}

/** The asymptotic rate with perfect knowledge of Y1 and e1 (infinitely many decoys). */
export function perfectDecoyRate(c: ChannelParams, mu: number, f: number): number {
  const { gain, qber } = expected(c, mu);
  const { y1, e1 } = singlePhoton(c);
  return keyRate(gain, qber, y1, e1, mu, f);
}

/** The vacuum + weak decoy rate (asymptotic: the expected gains, no fluctuations). */
export function vacuumWeakRate(c: ChannelParams, mu: number, nu: number, f: number): number {
  const s = expected(c, mu);
  const d = expected(c, nu);
  const { y1, e1 } = vacuumWeakBounds({
    mu,
    nu,
    qMu: s.gain,
    eMu: s.qber,
    qNu: d.gain,
    eNu: d.qber,
    y0: c.darkCountProbability,
  });
  return keyRate(s.gain, s.qber, y1, e1, mu, f);
}

/** Without decoys (GLLP): every multi-photon pulse counted as insecure. */
export function noDecoyRate(c: ChannelParams, mu: number, f: number): number {
  const { gain, qber } = expected(c, mu);
  const multi = 1 - (1 + mu) * Math.exp(-mu);
  const omega = 1 - multi / gain;
  if (!(omega > 0)) return 0;
  return Math.max(0, 0.5 * (-gain * f * h2(qber) + gain * omega * (1 - h2(qber / omega))));
}

/** The best rate over μ in (0, 1], by a scan (step 0.002, fine enough near the cut-off) refined around its maximum. */
export function optimiseMu(rate: (mu: number) => number): { mu: number; rate: number } {
  let best = { mu: 0.002, rate: rate(0.002) };
  for (let mu = 0.002; mu <= 1; mu += 0.002) {
    const r = rate(mu);
    if (r > best.rate) best = { mu, rate: r };
  }
  for (let mu = best.mu - 0.002; mu <= best.mu + 0.002; mu += 0.0001) {
    const r = mu > 0 ? rate(mu) : 0;
    if (r > best.rate) best = { mu, rate: r };
  }
  return best;
}

/** The largest distance (km, to 0.1 km) at which `rate(distance)` is still positive. */
export function maxDistance(rate: (km: number) => number, upTo = 300): number {
  let lo = 0;
  let hi = upTo;
  if (!(rate(lo) > 0)) return 0;
  while (hi - lo > 0.05) {
    const mid = (lo + hi) / 2;
    if (rate(mid) > 0) lo = mid;
    else hi = mid;
  }
  return Math.round(lo * 10) / 10;
}
