/**
 * The simulated link's key-rate table of docs/qkd-link.md, made from docs/figures/simulated-key-rate.csv
 * (bench/qkd-figures.ts writes both; test/qkd/figures-docs.test.ts checks the doc against the CSV).
 */
export const SIMULATED_HEADER = [
  'km',
  'detectors',
  'frame_pulses',
  'secret_bits_per_pulse_sent',
  'qber',
  'model_bits_per_pulse_sent',
  'secret_bps',
] as const;

/** The table's header and rows, cell by cell. */
export function simulatedRateRows(csv: string): string[][] {
  const [header, ...lines] = csv.trim().split('\n');
  if (header !== SIMULATED_HEADER.join(',')) throw new Error(`unexpected columns: ${header}`);
  const rows = lines.map((line) => {
    const [km, detectors, frame, measured, qber, model, bps] = line.split(',');
    return [
      km!,
      detectors!,
      Number(frame).toExponential(0),
      `${(Number(qber) * 100).toFixed(2)}%`,
      Number(measured).toExponential(3),
      Number(model).toExponential(3),
      (Number(measured) / Number(model)).toFixed(2),
      `${(Number(bps) / 1000).toFixed(1)} kbit/s`,
    ];
  });
  const head = [
    'km',
    'detectors',
    'frame pulses',
    'QBER',
    'simulated, bits per pulse sent',
    'model (asymptotic), bits per pulse sent',
    'ratio',
    'simulated at 1 GHz',
  ];
  return [head, ...rows];
}

/** As markdown (prettier pads the columns in the doc; the cells are what count). */
export const markdownTable = ([head, ...rows]: string[][]): string =>
  [head!, head!.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');

/** The cells of the markdown table in `doc` whose header row is `head` (separator row skipped). */
export function tableIn(doc: string, head: readonly string[]): string[][] {
  const lines = doc.split('\n');
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
  const start = lines.findIndex((l) => l.startsWith('|') && cells(l).join('|') === head.join('|'));
  if (start < 0) return [];
  const out = [cells(lines[start]!)];
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith('|'); i++) out.push(cells(lines[i]!));
  return out;
}
