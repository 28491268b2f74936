// Plots as inline SVG text, for a report that is one self-contained file: no script, no
// font or stylesheet from anywhere, readable in any browser and printable. Three kinds: line
// charts over time (with shaded spans and window marks), stacked bars per window, and a
// state timeline. Deliberately small: axes with round ticks, a legend, nothing interactive.

export interface Series {
  name: string;
  color: string;
  /** [x, y]; a NaN y breaks the line */
  points: [number, number][];
  dashed?: boolean;
  width?: number;
}

export interface Span {
  x0: number;
  x1: number;
  color: string;
  label?: string;
}

export interface LineChartOptions {
  title: string;
  yLabel: string;
  xLabel?: string;
  series: Series[];
  spans?: Span[];
  /** vertical marks, e.g. window boundaries */
  marks?: number[];
  xMax?: number;
  yMin?: number;
  width?: number;
  height?: number;
  /** shown instead of the plot area when no series has a point */
  empty?: string;
}

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"`;

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);
}

/** Round tick values from lo up to the first at or above hi (so a scale ending on the last tick holds every value), about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  const last = Math.ceil(hi / step - 1e-9) * step;
  for (let v = Math.ceil(lo / step) * step; v <= last + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000) return `${Number((v / 1000).toFixed(a >= 10_000 ? 0 : 1))}k`;
  if (a >= 10) return String(Math.round(v));
  if (a >= 1) return String(Number(v.toFixed(1)));
  return String(Number(v.toFixed(3)));
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frame(width: number, height: number): Frame {
  return { width, height, left: 58, right: 16, top: 34, bottom: 40 };
}

function header(f: Frame, title: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" role="img" aria-label="${escapeXml(title)}">` +
    `<rect width="${f.width}" height="${f.height}" fill="#fff"/>` +
    `<text x="${f.left}" y="18" ${FONT} font-size="14" font-weight="600" fill="#222">${escapeXml(title)}</text>`
  );
}

function legend(f: Frame, items: { name: string; color: string; dashed?: boolean }[]): string {
  let x = f.width - f.right;
  let out = "";
  for (const it of [...items].reverse()) {
    // A generous width per character: capitals ("DEGRADED") are wider than the average.
    const w = 26 + it.name.length * 7.2;
    x -= w;
    out +=
      `<line x1="${x}" y1="14" x2="${x + 18}" y2="14" stroke="${it.color}" stroke-width="3"${it.dashed ? ' stroke-dasharray="5 3"' : ""}/>` +
      `<text x="${x + 22}" y="18" ${FONT} font-size="11" fill="#333">${escapeXml(it.name)}</text>`;
    x -= 8;
  }
  return out;
}

function axes(f: Frame, xs: number[], ys: number[], xScale: (v: number) => number, yScale: (v: number) => number, xLabel: string, yLabel: string): string {
  let out = "";
  for (const y of ys) {
    const py = yScale(y).toFixed(1);
    out += `<line x1="${f.left}" y1="${py}" x2="${f.width - f.right}" y2="${py}" stroke="#e6e6e6"/>`;
    out += `<text x="${f.left - 6}" y="${Number(py) + 4}" text-anchor="end" ${FONT} font-size="11" fill="#555">${formatTick(y)}</text>`;
  }
  const base = f.height - f.bottom;
  out += `<line x1="${f.left}" y1="${base}" x2="${f.width - f.right}" y2="${base}" stroke="#888"/>`;
  out += `<line x1="${f.left}" y1="${f.top}" x2="${f.left}" y2="${base}" stroke="#888"/>`;
  for (const x of xs) {
    const px = xScale(x).toFixed(1);
    out += `<line x1="${px}" y1="${base}" x2="${px}" y2="${base + 4}" stroke="#888"/>`;
    out += `<text x="${px}" y="${base + 16}" text-anchor="middle" ${FONT} font-size="11" fill="#555">${formatTick(x)}</text>`;
  }
  out += `<text x="${(f.left + f.width - f.right) / 2}" y="${f.height - 6}" text-anchor="middle" ${FONT} font-size="11" fill="#555">${escapeXml(xLabel)}</text>`;
  out += `<text x="14" y="${(f.top + base) / 2}" text-anchor="middle" ${FONT} font-size="11" fill="#555" transform="rotate(-90 14 ${(f.top + base) / 2})">${escapeXml(yLabel)}</text>`;
  return out;
}

function emptyNote(f: Frame, text: string): string {
  return `<text x="${f.width / 2}" y="${Math.max(f.height / 2, 54)}" text-anchor="middle" ${FONT} font-size="13" fill="#777">${escapeXml(text)}</text>`;
}

/** Time on the x axis in minutes once a run is longer than 5 minutes, else in seconds. */
export function timeAxis(spanS: number): { unit: string; scale: number } {
  return spanS > 300 ? { unit: "minutes since the start of the measurement", scale: 1 / 60 } : { unit: "seconds since the start of the measurement", scale: 1 };
}

export function lineChart(o: LineChartOptions): string {
  const pts = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  // Nothing to draw: a short box that says why, not a tall empty one.
  const f = frame(o.width ?? 880, pts.length === 0 ? 80 : (o.height ?? 240));
  let out = header(f, o.title);
  if (pts.length === 0) return out + emptyNote(f, o.empty ?? "nothing measured") + "</svg>";
  const xMax = o.xMax ?? Math.max(...pts.map((p) => p[0]));
  const yLo = o.yMin ?? 0;
  const yHi = Math.max(...pts.map((p) => p[1]), yLo + 1e-9);
  const yTicks = niceTicks(yLo, yHi * 1.05);
  const yTop = yTicks[yTicks.length - 1];
  const xTicks = niceTicks(0, Math.max(xMax, 1e-9), 8).filter((x) => x <= xMax * 1.0001);
  const xScale = (v: number): number => f.left + ((f.width - f.left - f.right) * v) / Math.max(xMax, 1e-9);
  const yScale = (v: number): number => f.height - f.bottom - ((f.height - f.top - f.bottom) * (v - yLo)) / (yTop - yLo);
  for (const s of o.spans ?? []) {
    const x0 = xScale(Math.max(0, s.x0));
    const x1 = xScale(Math.min(xMax, s.x1));
    if (x1 > x0) out += `<rect x="${x0.toFixed(1)}" y="${f.top}" width="${(x1 - x0).toFixed(1)}" height="${f.height - f.top - f.bottom}" fill="${s.color}" opacity="0.35"/>`;
  }
  out += axes(f, xTicks, yTicks, xScale, yScale, o.xLabel ?? "", o.yLabel);
  for (const m of o.marks ?? []) {
    if (m <= 0 || m >= xMax) continue;
    out += `<line x1="${xScale(m).toFixed(1)}" y1="${f.top}" x2="${xScale(m).toFixed(1)}" y2="${f.height - f.bottom}" stroke="#aaa" stroke-dasharray="2 4"/>`;
  }
  for (const s of o.series) {
    const segments: string[][] = [[]];
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y) || !Number.isFinite(x)) {
        if (segments[segments.length - 1].length > 0) segments.push([]);
        continue;
      }
      segments[segments.length - 1].push(`${xScale(x).toFixed(1)},${yScale(Math.min(y, yTop)).toFixed(1)}`);
    }
    for (const seg of segments) {
      if (seg.length === 0) continue;
      const dash = s.dashed ? ' stroke-dasharray="6 4"' : "";
      if (seg.length === 1) out += `<circle cx="${seg[0].split(",")[0]}" cy="${seg[0].split(",")[1]}" r="2.5" fill="${s.color}"/>`;
      else out += `<polyline points="${seg.join(" ")}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.8}" stroke-linejoin="round"${dash}/>`;
    }
  }
  out += legend(f, o.series.map((s) => ({ name: s.name, color: s.color, dashed: s.dashed })));
  return out + "</svg>";
}

export interface StackedBarsOptions {
  title: string;
  yLabel: string;
  categories: string[];
  stacks: { name: string; color: string; values: number[] }[];
  /** a second set drawn as outlined bars beside each (a baseline) */
  compare?: { label: string; totals: (number | null)[] };
  width?: number;
  height?: number;
  empty?: string;
}

export function stackedBars(o: StackedBarsOptions): string {
  // The legend goes under the bars (stage names are long), in as many rows as it needs.
  const items = [...o.stacks.map((s) => ({ name: s.name, color: s.color })), ...(o.compare ? [{ name: o.compare.label, color: "#777" }] : [])];
  const width = o.width ?? 880;
  const placed: { name: string; color: string; x: number; row: number }[] = [];
  let lx = 58;
  let row = 0;
  for (const it of items) {
    const w = 24 + it.name.length * 6.6;
    if (lx + w > width - 16 && lx > 58) {
      row++;
      lx = 58;
    }
    placed.push({ ...it, x: lx, row });
    lx += w;
  }
  const f = frame(width, (o.height ?? 260) + row * 18);
  f.bottom = 52 + row * 18;
  let out = header(f, o.title);
  const totals = o.categories.map((_, i) => o.stacks.reduce((a, s) => a + (Number.isFinite(s.values[i]) ? s.values[i] : 0), 0));
  const compare = o.compare?.totals ?? [];
  const hi = Math.max(...totals, ...compare.map((v) => v ?? 0));
  if (o.categories.length === 0 || !(hi > 0)) return out + emptyNote(f, o.empty ?? "nothing measured") + "</svg>";
  const yTicks = niceTicks(0, hi * 1.05);
  const yTop = yTicks[yTicks.length - 1];
  const plotW = f.width - f.left - f.right;
  const slot = plotW / o.categories.length;
  const barW = Math.min(60, slot * (o.compare ? 0.4 : 0.6));
  const yScale = (v: number): number => f.height - f.bottom - ((f.height - f.top - f.bottom) * v) / yTop;
  out += axes(f, [], yTicks, () => 0, yScale, "", o.yLabel);
  const every = Math.max(1, Math.ceil(o.categories.length / 16));
  o.categories.forEach((c, i) => {
    const x = f.left + slot * i + (slot - barW * (o.compare ? 2.2 : 1)) / 2;
    let acc = 0;
    for (const s of o.stacks) {
      const v = Number.isFinite(s.values[i]) ? s.values[i] : 0;
      if (v <= 0) continue;
      const y0 = yScale(acc);
      const y1 = yScale(acc + v);
      out += `<rect x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${barW.toFixed(1)}" height="${(y0 - y1).toFixed(1)}" fill="${s.color}"><title>${escapeXml(`${c}: ${s.name} ${v.toFixed(2)}`)}</title></rect>`;
      acc += v;
    }
    const cmp = compare[i];
    if (cmp != null && cmp > 0) {
      const bx = x + barW * 1.2;
      out += `<rect x="${bx.toFixed(1)}" y="${yScale(cmp).toFixed(1)}" width="${barW.toFixed(1)}" height="${(yScale(0) - yScale(cmp)).toFixed(1)}" fill="#f4f4f4" stroke="#777" stroke-dasharray="4 3"/>`;
    }
    if (i % every === 0) out += `<text x="${(f.left + slot * (i + 0.5)).toFixed(1)}" y="${f.height - f.bottom + 16}" text-anchor="middle" ${FONT} font-size="11" fill="#555">${escapeXml(c)}</text>`;
  });
  const legendTop = f.height - f.bottom + 30;
  for (const it of placed) {
    const y = legendTop + it.row * 18;
    out += `<rect x="${it.x.toFixed(1)}" y="${y}" width="12" height="12" fill="${it.color}"/><text x="${(it.x + 16).toFixed(1)}" y="${y + 10}" ${FONT} font-size="11" fill="#333">${escapeXml(it.name)}</text>`;
  }
  return out + "</svg>";
}

export interface TimelineOptions {
  title: string;
  xMax: number;
  xLabel: string;
  /** consecutive segments; colors by state */
  segments: { x0: number; x1: number; state: string }[];
  colors: Record<string, string>;
  /** labelled marks above the band, e.g. faults */
  marks?: { x: number; label: string }[];
  width?: number;
  empty?: string;
}

export function timeline(o: TimelineOptions): string {
  const f = frame(o.width ?? 880, 120);
  f.top = 46;
  f.bottom = 40;
  let out = header(f, o.title);
  if (o.segments.length === 0) return out + emptyNote(f, o.empty ?? "no health messages") + "</svg>";
  const xScale = (v: number): number => f.left + ((f.width - f.left - f.right) * v) / Math.max(o.xMax, 1e-9);
  const y = f.top;
  const h = f.height - f.top - f.bottom;
  for (const s of o.segments) {
    const x0 = xScale(s.x0);
    const x1 = Math.max(x0 + 1, xScale(s.x1));
    out += `<rect x="${x0.toFixed(1)}" y="${y}" width="${(x1 - x0).toFixed(1)}" height="${h}" fill="${o.colors[s.state] ?? "#999"}"><title>${escapeXml(`${s.state} ${s.x0.toFixed(1)}-${s.x1.toFixed(1)}`)}</title></rect>`;
  }
  const xs = niceTicks(0, o.xMax, 8).filter((x) => x <= o.xMax);
  const base = f.height - f.bottom;
  for (const x of xs) {
    out += `<line x1="${xScale(x).toFixed(1)}" y1="${base}" x2="${xScale(x).toFixed(1)}" y2="${base + 4}" stroke="#888"/>`;
    out += `<text x="${xScale(x).toFixed(1)}" y="${base + 16}" text-anchor="middle" ${FONT} font-size="11" fill="#555">${formatTick(x)}</text>`;
  }
  out += `<text x="${(f.left + f.width - f.right) / 2}" y="${f.height - 6}" text-anchor="middle" ${FONT} font-size="11" fill="#555">${escapeXml(o.xLabel)}</text>`;
  for (const m of o.marks ?? []) {
    const px = xScale(m.x).toFixed(1);
    out += `<line x1="${px}" y1="${y - 6}" x2="${px}" y2="${y + h}" stroke="#222" stroke-width="1.5"/><text x="${px}" y="${y - 9}" text-anchor="middle" ${FONT} font-size="10" fill="#222">${escapeXml(m.label)}</text>`;
  }
  const states = [...new Set(o.segments.map((s) => s.state))];
  out += legend(
    f,
    states.map((s) => ({ name: s, color: o.colors[s] ?? "#999" })),
  );
  return out + "</svg>";
}
