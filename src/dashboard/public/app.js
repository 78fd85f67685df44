// The QKS dashboard: draws the network view the server streams (server-sent events) as a topology,
// per-link time series, sites, integrations and recent deliveries. Plain DOM and SVG, no libraries;
// every value is set as text, never parsed as HTML.

const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);
let selectedLink = null;
let latest = null;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

const integer = new Intl.NumberFormat('en');
export function formatRate(bps) {
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mb/s`;
  if (bps >= 1e3) return `${(bps / 1e3).toFixed(1)} kb/s`;
  return `${Math.round(bps)} b/s`;
}
// Measured only; before a link's first frame, the model's figure labelled as expected.
export function linkRate(link) {
  if (link.rate_bps !== null && link.rate_bps !== undefined) return formatRate(link.rate_bps);
  const expected = link.expected_rate_bps;
  return expected === undefined ? 'no frame yet' : `no frame yet (expected ${formatRate(expected)})`;
}
// As src/dashboard/network.ts's NODE_STATUS_TEXT: a KME that answered 401 or 403 is not "unreachable".
const NODE_STATUS_TEXT = {
  up: 'up',
  refused: 'refused our credentials',
  unreachable: 'unreachable',
  unwatched: 'unwatched',
};
export const nodeStatusText = (status) => NODE_STATUS_TEXT[status] ?? status;
const formatQber = (q) => (q === null || q === undefined ? 'n/a' : `${(q * 100).toFixed(2)} %`);
const formatFill = (f) => `${(f * 100).toFixed(f < 0.1 ? 1 : 0)} %`;
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });

function countdown(ms, now) {
  if (ms === null || ms === undefined) return '—';
  const s = Math.round((ms - now) / 1000);
  if (s <= 0) return 'due';
  return s >= 60 ? `in ${Math.floor(s / 60)} min ${s % 60} s` : `in ${s} s`;
}

/** Nodes on a circle (a line for two), so a dozen sites stay readable. */
function layout(nodes, width, height) {
  const n = nodes.length;
  const pos = new Map();
  if (n === 1) pos.set(nodes[0].id, { x: width / 2, y: height / 2 });
  else if (n === 2) {
    pos.set(nodes[0].id, { x: width * 0.2, y: height / 2 });
    pos.set(nodes[1].id, { x: width * 0.8, y: height / 2 });
  } else {
    const r = Math.min(width, height) / 2 - 50;
    nodes.forEach((node, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      pos.set(node.id, { x: width / 2 + r * Math.cos(a) * (width / height), y: height / 2 + r * Math.sin(a) });
    });
  }
  return pos;
}

const linkTitle = (link) =>
  `${link.link_ID}: ${link.health}${link.health_reasons.length ? ` (${link.health_reasons.join('; ')})` : ''}`;

/** Built again only when sites or links come or go; otherwise updated in place, so clicks land. */
let shape = '';
const drawn = { nodes: new Map(), links: new Map() };

function buildTopology(view) {
  const root = $('topology');
  root.replaceChildren();
  drawn.nodes.clear();
  drawn.links.clear();
  // Two sites need a strip; more go round an ellipse that fills the panel.
  const [width, height] = [800, view.nodes.length <= 2 ? 240 : 440];
  root.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const crowded = view.nodes.length > 6;
  const many = view.links.length > 6;
  const pos = layout(view.nodes, width, height);
  for (const link of view.links) {
    const [a, b] = link.endpoints.map((e) => pos.get(e));
    if (!a || !b) continue;
    const g = svg('g', { 'data-link': link.link_ID, class: 'link' });
    const line = svg('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: 'edge' });
    const title = svg('title');
    line.append(title);
    const [mx, my] = [(a.x + b.x) / 2, (a.y + b.y) / 2];
    const label = svg('text', { x: mx, y: my - 10, class: 'edge-label', 'data-field': 'label' });
    g.append(line, label);
    if (!many) g.append(svg('text', { x: mx, y: my + 20, class: 'edge-label' }, link.link_ID));
    g.addEventListener('click', () => {
      selectedLink = link.link_ID;
      render(latest);
    });
    root.append(g);
    drawn.links.set(link.link_ID, { line, title, label, many });
  }
  for (const node of view.nodes) {
    const p = pos.get(node.id);
    const g = svg('g', { 'data-node': node.id, transform: `translate(${p.x},${p.y})` });
    const r = crowded ? 22 : 34;
    g.append(svg('circle', { r }));
    g.append(svg('text', { y: 5, class: 'name' }, node.id.replace(/^kme-/, '')));
    let sub = null;
    if (!crowded) {
      g.append(svg('text', { y: r + 16, class: 'sub' }, node.id));
      sub = svg('text', { y: r + 30, class: 'sub', 'data-field': 'node-sub' });
      g.append(sub);
    }
    const title = svg('title');
    g.append(title);
    root.append(g);
    drawn.nodes.set(node.id, { g, sub, title });
  }
}

function drawTopology(view) {
  const key = JSON.stringify([view.nodes.map((n) => n.id), view.links.map((l) => [l.link_ID, l.endpoints])]);
  if (key !== shape) buildTopology(view);
  shape = key;
  for (const link of view.links) {
    const d = drawn.links.get(link.link_ID);
    if (!d) continue;
    d.line.setAttribute('class', `edge ${link.health}${link.link_ID === selectedLink ? ' selected' : ''}`);
    d.title.textContent = linkTitle(link);
    const fill = link.ends.reduce((m, e) => Math.min(m, e.pool_fill), Infinity);
    d.label.textContent = d.many
      ? linkRate(link)
      : `${linkRate(link)} · QBER ${formatQber(link.qber)} · pool ${formatFill(fill)}`;
  }
  for (const node of view.nodes) {
    const d = drawn.nodes.get(node.id);
    d.g.setAttribute('class', `node ${node.status}`);
    if (d.sub) {
      d.sub.textContent =
        node.status === 'up'
          ? `${integer.format(node.keys_delivered.to_masters + node.keys_delivered.to_slaves)} keys delivered`
          : nodeStatusText(node.status);
    }
    d.title.textContent = node.error ? `${node.id}: ${node.error}` : node.id;
  }
}

function chart(id, samples, value, format, unmeasured = 'collecting…') {
  const root = $(id);
  root.replaceChildren();
  const points = samples.map((s) => [s.t, value(s)]).filter(([, v]) => v !== null && v !== undefined);
  if (points.length < 2) {
    root.append(
      svg(
        'text',
        { x: 180, y: 50, class: 'none' },
        points.length === 0 && samples.length > 0 ? unmeasured : 'collecting…',
      ),
    );
    return;
  }
  const [t0, t1] = [points[0][0], points.at(-1)[0]];
  const max = points.reduce((m, [, v]) => Math.max(m, v), -Infinity) || 1;
  const x = (t) => 4 + ((t - t0) / Math.max(1, t1 - t0)) * 352;
  const y = (v) => 84 - (v / max) * 70;
  root.append(
    svg('polyline', {
      class: 'line',
      points: points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
    }),
  );
  root.append(svg('text', { x: 6, y: 12, class: 'axis' }, `max ${format(max)}`));
  root.append(svg('text', { x: 354, y: 12, class: 'axis', 'text-anchor': 'end' }, `now ${format(points.at(-1)[1])}`));
  root.append(svg('text', { x: 6, y: 88, class: 'axis' }, `${Math.round((t1 - t0) / 60000) || '<1'} min`));
}

function drawLink(view) {
  const link = view.links.find((l) => l.link_ID === selectedLink) ?? view.links[0];
  const facts = $('link-facts');
  facts.replaceChildren();
  if (!link) {
    $('link-title').textContent = 'Link';
    facts.append(el('dt', {}, 'no links'), el('dd', {}, ''));
    return;
  }
  selectedLink = link.link_ID;
  $('link-title').textContent = `Link ${link.link_ID}`;
  const add = (name, value, field) =>
    facts.append(el('dt', {}, name), el('dd', field ? { 'data-field': field } : {}, value));
  add('health', `${link.health}${link.health_reasons.length ? ` — ${link.health_reasons.join('; ')}` : ''}`, 'health');
  add('source', `${link.kind}, ${link.state}`);
  add('key rate', linkRate(link), 'rate');
  add('QBER', formatQber(link.qber), 'qber');
  for (const end of link.ends) {
    add(
      `pool at ${end.KME_ID}`,
      `${integer.format(end.own_blocks)} blocks (${formatFill(end.pool_fill)}), ${integer.format(end.stored_key_count)} keys`,
      `pool-${end.KME_ID}`,
    );
  }
  chart('chart-rate', link.history, (s) => s.rateBps, formatRate);
  chart('chart-qber', link.history, (s) => s.qber, formatQber, 'not measured by this link');
  chart(
    'chart-pool',
    link.history,
    (s) => s.ownBlocks,
    (v) => integer.format(Math.round(v)),
  );
}

function rows(tbody, items, cells, empty) {
  tbody.replaceChildren();
  if (items.length === 0) {
    const tr = el('tr');
    tr.append(el('td', { colspan: '7', class: 'empty' }, empty));
    tbody.append(tr);
  }
  for (const item of items) {
    const tr = el('tr');
    for (const cell of cells(item)) tr.append(cell instanceof Node ? wrap(cell) : el('td', {}, cell));
    tbody.append(tr);
  }
}
const wrap = (node) => {
  const td = el('td');
  td.append(node);
  return td;
};

function drawSites(view) {
  rows(
    $('sites').querySelector('tbody'),
    view.nodes,
    (n) => {
      const peers = view.peers.filter((p) => p.KME_ID === n.id);
      const sync = peers
        .map(
          (p) =>
            `${p.peer} ${p.lastLagMs === null ? '–' : `${p.lastLagMs.toFixed(1)} ms`}${p.failures ? `, ${p.failures} failed` : ''}`,
        )
        .join('; ');
      const d = n.keys_delivered;
      // A warning (an expiring revocation list) shows beside the state, in full on hover.
      const text = nodeStatusText(n.status);
      const state = el(
        'span',
        { class: `state-${n.status === 'up' || n.status === 'refused' ? n.status : 'down'}`, title: n.error ?? '' },
        text,
      );
      const warnings = n.warnings ?? [];
      const shown = warnings.length
        ? el('span', { class: 'state-warning', title: warnings.join('\n') }, `${text} ⚠ ${warnings.join('; ')}`)
        : state;
      return [
        n.id,
        shown,
        d ? integer.format(d.to_masters) : '—',
        d ? integer.format(d.to_slaves) : '—',
        n.keys_waiting_for_slaves ?? '—',
        sync || '—',
      ];
    },
    'no KMEs',
  );
}

function drawIntegrations(view) {
  rows(
    $('integrations').querySelector('tbody'),
    view.integrations,
    (i) => [
      i.sae,
      i.kind,
      i.name,
      i.peer,
      el('code', {}, i.key_ID ?? '—'),
      countdown(i.rotates_at, view.generated_at),
      el('span', { class: `state-${i.stale ? 'stale' : i.state}` }, i.stale ? 'no report' : i.state),
    ],
    'no tunnel or IPsec agent has reported',
  );
}

/** Keys relayed through trusted nodes: who relays now, and the latest paths started by the watched KMEs. */
function drawRelays(view) {
  const busy = view.nodes.filter(
    (n) => n.relays && n.relays.in_progress + n.relays.passed_on.ok + n.relays.originated.ok > 0,
  );
  $('relay-counts').textContent = busy.length
    ? busy
        .map(
          (n) =>
            `${n.id}: ${n.relays.in_progress} now, ${n.relays.originated.ok} started, ${n.relays.passed_on.ok} passed on`,
        )
        .join(' · ')
    : '';
  rows(
    $('relays').querySelector('tbody'),
    view.relays ?? [],
    (r) => [
      clock(r.at),
      el('span', { 'data-relay-path': r.path.join(' ') }, r.path.join(' › ')),
      String(r.keys),
      el('span', { class: r.ok ? 'state-up' : 'state-down' }, r.ok ? 'delivered' : 'failed'),
    ],
    'no keys relayed yet',
  );
}

/** The SDN controller beside the dashboard, if any: what it sees, and the paths it installed. */
function drawController(view) {
  const c = view.controller;
  $('controller-panel').hidden = !c;
  if (!c) return;
  $('controller-summary').textContent = c.reachable
    ? `${c.nodes_reachable}/${c.nodes} KMEs read over ETSI 015 · ${c.links_up}/${c.links} links up · ${c.url}`
    : `not answering (${c.error}) · ${c.url}`;
  rows(
    $('virtual-links').querySelector('tbody'),
    c.virtual_links ?? [],
    (v) => [
      el('span', { 'data-virtual-link': v.path.join(' ') }, v.path.join(' › ')),
      el('code', {}, v.id.slice(0, 8)),
    ],
    'none: the KMEs route by link state',
  );
}

function drawSaes(view) {
  const root = $('saes');
  root.replaceChildren();
  // With many SAEs, the idle ones would bury the busy ones: they are named in one line instead.
  const idle = view.saes.filter((s) => s.deliveries.length === 0);
  const shown = view.saes.length > 6 ? view.saes.filter((s) => s.deliveries.length > 0) : view.saes;
  if (shown.length < view.saes.length) {
    root.append(el('p', { class: 'idle' }, `No keys yet: ${idle.map((s) => s.SAE_ID).join(', ')}`));
  }
  for (const sae of shown) {
    const box = el('div', { class: 'sae', 'data-sae': sae.SAE_ID });
    const title = el('h3', {}, sae.SAE_ID);
    title.append(el('span', { class: 'at' }, ` at ${sae.KME_ID}`));
    const table = el('table');
    const head = el('tr');
    for (const h of ['time', 'as', 'peer', 'keys', 'key IDs']) head.append(el('th', {}, h));
    const tbody = el('tbody');
    table.append(el('thead'), tbody);
    table.firstChild.append(head);
    rows(
      tbody,
      sae.deliveries.slice(0, 8),
      (d) => {
        const ids = el('code', {}, d.keyIds.slice(0, 3).join(' ') + (d.number > 3 ? ' …' : ''));
        return [clock(d.at), d.role, d.peers.join(', '), `${d.number} × ${d.sizeBits} bit`, ids];
      },
      'no keys delivered yet',
    );
    box.append(title, table);
    root.append(box);
  }
}

function render(view) {
  if (!view) return;
  latest = view;
  const up = view.nodes.filter((n) => n.status === 'up').length;
  const refused = view.nodes.filter((n) => n.status === 'refused').length;
  const starting = view.links.filter((l) => l.health === 'starting').length;
  const bad = view.links.filter((l) => l.health !== 'healthy' && l.health !== 'starting').length;
  const links = [`${view.links.length} links`, starting && `${starting} starting`, bad && `${bad} not healthy`];
  $('summary').textContent =
    `${up}/${view.nodes.length} KMEs answering${refused ? ` (${refused} refused our credentials)` : ''} · ` +
    `${links.filter(Boolean).join(', ')} · ${clock(view.generated_at)}`;
  drawTopology(view);
  drawLink(view);
  drawSites(view);
  drawIntegrations(view);
  drawRelays(view);
  drawController(view);
  drawSaes(view);
}

function connect() {
  const pill = $('connection');
  const events = new EventSource('/api/v1/admin/events');
  events.onopen = () => {
    pill.textContent = 'live';
    pill.className = 'pill pill-live';
  };
  events.onmessage = (e) => render(JSON.parse(e.data));
  events.onerror = () => {
    pill.textContent = 'reconnecting…';
    pill.className = 'pill pill-lost';
  };
}

if (typeof document !== 'undefined') connect();
