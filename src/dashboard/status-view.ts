import { NODE_STATUS_TEXT, type NetworkView } from './network.js';

/** `qks status`: the dashboard's numbers as a few lines of text, for a terminal without a browser. */
export interface StatusStyle {
  readonly colour: boolean;
}

const COLOURS = {
  healthy: 32,
  starting: 36,
  degraded: 33,
  down: 31,
  up: 32,
  refused: 35,
  unreachable: 31,
  unwatched: 90,
} as const;

export function formatRate(bps: number): string {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mb/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(1)} kb/s`;
  return `${Math.round(bps)} b/s`;
}

/** The measured rate, or, before the link's first frame, that and the model's figure labelled as such. */
export function linkRate(l: { rate_bps: number | null; expected_rate_bps?: number }): string {
  if (l.rate_bps !== null) return formatRate(l.rate_bps);
  return l.expected_rate_bps === undefined
    ? 'no frame yet'
    : `no frame yet (expected ${formatRate(l.expected_rate_bps)})`;
}

const qber = (q: number | null) => (q === null ? 'n/a' : `${(q * 100).toFixed(2)}%`);
const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);
const n = (v: number) => v.toLocaleString('en');

function table(rows: string[][]): string[] {
  // Widths from the visible text: colour codes take no room on screen.
  // eslint-disable-next-line no-control-regex
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const widths = rows[0]!.map((_, i) => rows.reduce((w, r) => Math.max(w, visible(r[i] ?? '')), -Infinity));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visible(cell))))
      .join('  ')
      .trimEnd(),
  );
}

export function renderStatus(view: NetworkView, style: StatusStyle = { colour: false }): string {
  const paint = (word: keyof typeof COLOURS, text: string = word) =>
    style.colour ? `\x1b[${COLOURS[word]}m${text}\x1b[0m` : text;
  const up = view.nodes.filter((x) => x.status === 'up').length;
  const refused = view.nodes.filter((x) => x.status === 'refused').length;
  const lines = [
    `QKS network at ${time(view.generated_at)} UTC: ${up}/${view.nodes.length} KMEs answering` +
      (refused > 0 ? ` (${refused} refused our credentials)` : ''),
    '',
  ];
  lines.push(
    ...table([
      ['LINK', 'ENDS', 'HEALTH', 'KEY RATE', 'QBER', 'POOL (own blocks, fill, keys)'],
      ...view.links.map((l) => [
        l.link_ID,
        l.endpoints.join(' - '),
        paint(l.health),
        linkRate(l),
        qber(l.qber),
        l.ends
          .map((e) => `${e.KME_ID} ${n(e.own_blocks)} ${(e.pool_fill * 100).toFixed(1)}% ${n(e.stored_key_count)}`)
          .join(' | '),
      ]),
    ]),
  );
  if (view.links.some((l) => l.health_reasons.length > 0)) {
    for (const l of view.links)
      if (l.health_reasons.length) lines.push(`  ${l.link_ID}: ${l.health_reasons.join('; ')}`);
  }
  lines.push('');
  lines.push(
    ...table([
      ['KME', 'STATUS', 'TO MASTERS', 'TO SLAVES', 'WAITING', 'PEER SYNC (last round trip, failures)'],
      ...view.nodes.map((k) => [
        k.id,
        paint(k.status, NODE_STATUS_TEXT[k.status]),
        k.keys_delivered ? n(k.keys_delivered.to_masters) : '-',
        k.keys_delivered ? n(k.keys_delivered.to_slaves) : '-',
        k.keys_waiting_for_slaves === undefined ? '-' : n(k.keys_waiting_for_slaves),
        view.peers
          .filter((p) => p.KME_ID === k.id)
          .map((p) => `${p.peer} ${p.lastLagMs === null ? '-' : `${p.lastLagMs.toFixed(1)} ms`}, ${p.failures} failed`)
          .join('; ') ||
          (k.error ?? '-'),
      ]),
    ]),
  );
  const warnings = view.nodes.flatMap((k) => (k.warnings ?? []).map((w) => `${k.id}: ${w}`));
  if (warnings.length > 0) lines.push('', 'WARNINGS', ...warnings.map((w) => `  ${paint('down', w)}`));
  const recent = view.saes
    .flatMap((s) => s.deliveries.slice(0, 3).map((d) => ({ ...d, KME_ID: s.KME_ID })))
    .sort((a, b) => b.at - a.at)
    .slice(0, 6);
  if (recent.length > 0) {
    lines.push('', 'RECENT DELIVERIES');
    lines.push(
      ...table(
        recent.map((d) => [
          time(d.at),
          `${d.sae}@${d.KME_ID}`,
          d.role === 'master' ? `-> ${d.peers.join(',')}` : `<- ${d.peers.join(',')}`,
          `${d.number} x ${d.sizeBits} bit`,
          d.keyIds.join(' '),
        ]),
      ),
    );
  }
  const relaying = view.nodes.filter(
    (k) =>
      k.relays &&
      k.relays.originated.ok +
        k.relays.originated.failed +
        k.relays.passed_on.ok +
        k.relays.passed_on.failed +
        k.relays.in_progress >
        0,
  );
  if (relaying.length > 0) {
    lines.push('', 'RELAYS (in progress; started here: done, failed; passed on: done, failed)');
    lines.push(
      ...table(
        relaying.map((k) => {
          const r = k.relays!;
          return [
            k.id,
            `${r.in_progress} now`,
            `started ${r.originated.ok}, ${r.originated.failed} failed`,
            `passed on ${r.passed_on.ok}, ${r.passed_on.failed} failed`,
          ];
        }),
      ),
    );
    if (view.relays.length > 0) {
      lines.push('', 'RECENT RELAY PATHS');
      lines.push(
        ...table(
          view.relays
            .slice(0, 6)
            .map((r) => [time(r.at), r.path.join(' > '), `${r.keys} keys`, r.ok ? 'ok' : paint('down', 'failed')]),
        ),
      );
    }
  }
  if (view.integrations.length > 0) {
    lines.push('', 'INTEGRATIONS');
    lines.push(
      ...table(
        view.integrations.map((i) => [
          `${i.sae}@${i.KME_ID}`,
          i.kind,
          i.name,
          `peer ${i.peer}`,
          `key ${i.key_ID ?? '-'}`,
          i.rotates_at === null
            ? 'rotation -'
            : `rotates in ${Math.max(0, Math.round((i.rotates_at - view.generated_at) / 1000))} s`,
          i.stale ? 'no report' : i.state,
        ]),
      ),
    );
  }
  return lines.join('\n') + '\n';
}
