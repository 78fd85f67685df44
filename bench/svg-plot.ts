/** A minimal SVG line/scatter chart: enough for the docs' comparison figures, no dependency. */
export interface Series {
  readonly label: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly color: string;
  /** Markers only, no line (measured points). */
  readonly markers?: boolean;
  readonly dashed?: boolean;
}

export interface Chart {
  readonly title: string;
  readonly x: { label: string; min: number; max: number };
  readonly y: { label: string; min: number; max: number; log?: boolean };
  readonly series: readonly Series[];
}

const W = 720;
const H = 440;
const M = { l: 80, r: 20, t: 40, b: 60 };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function svgChart(c: Chart): string {
  const fy = (v: number) => (c.y.log ? Math.log10(v) : v);
  const [y0, y1] = [fy(c.y.min), fy(c.y.max)];
  const px = (x: number) => M.l + ((x - c.x.min) / (c.x.max - c.x.min)) * (W - M.l - M.r);
  const py = (y: number) => H - M.b - ((fy(y) - y0) / (y1 - y0)) * (H - M.t - M.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(c.title)}</text>`,
  ];
  const xTicks = 6;
  for (let i = 0; i <= xTicks; i++) {
    const v = c.x.min + ((c.x.max - c.x.min) * i) / xTicks;
    out.push(`<line x1="${px(v)}" y1="${M.t}" x2="${px(v)}" y2="${H - M.b}" stroke="#ddd"/>`);
    out.push(`<text x="${px(v)}" y="${H - M.b + 18}" text-anchor="middle">${+v.toPrecision(3)}</text>`);
  }
  const yValues = c.y.log
    ? Array.from({ length: Math.round(y1 - y0) + 1 }, (_, i) => 10 ** (Math.ceil(y0) + i)).filter((v) => fy(v) <= y1)
    : Array.from({ length: 6 }, (_, i) => c.y.min + ((c.y.max - c.y.min) * i) / 5);
  for (const v of yValues) {
    out.push(`<line x1="${M.l}" y1="${py(v)}" x2="${W - M.r}" y2="${py(v)}" stroke="#ddd"/>`);
    const label = c.y.log ? `1e${Math.round(Math.log10(v))}` : `${+v.toPrecision(3)}`;
    out.push(`<text x="${M.l - 6}" y="${py(v) + 4}" text-anchor="end">${label}</text>`);
  }
  out.push(
    `<rect x="${M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="black"/>`,
  );
  out.push(`<text x="${W / 2}" y="${H - 15}" text-anchor="middle">${esc(c.x.label)}</text>`);
  out.push(
    `<text x="18" y="${H / 2}" text-anchor="middle" transform="rotate(-90 18 ${H / 2})">${esc(c.y.label)}</text>`,
  );
  c.series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => x >= c.x.min && x <= c.x.max && y >= c.y.min && y <= c.y.max);
    if (s.markers) {
      for (const [x, y] of pts) out.push(`<circle cx="${px(x)}" cy="${py(y)}" r="4" fill="${s.color}"/>`);
    } else if (pts.length > 1) {
      const d = pts.map(([x, y], j) => `${j ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('');
      out.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    }
    const ly = M.t + 16 + i * 18;
    out.push(`<rect x="${W - M.r - 250}" y="${ly - 9}" width="14" height="4" fill="${s.color}"/>`);
    out.push(`<text x="${W - M.r - 230}" y="${ly - 3}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
