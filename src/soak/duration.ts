// Durations as people write them on a command line or in a plan: "130s", "1m", "2h",
// "1h30m", "500ms", or a bare number of seconds.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds; throws a RangeError naming the text and the accepted forms. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== t) {
    throw new RangeError(`"${text}" is not a duration: expected a number with a unit, e.g. 500ms, 130s, 10m, 2h or 1h30m (a bare number is seconds)`);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNIT_MS[p[2]], 0));
}

/** 130000 -> "2 min 10 s", 7200000 -> "2 h"; for reports and progress lines. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  const s = Math.round(ms / 1000);
  if (s < 60) return ms < 10_000 && ms % 1000 !== 0 ? `${(ms / 1000).toFixed(1)} s` : `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return [h > 0 ? `${h} h` : "", m > 0 ? `${m} min` : "", r > 0 && h === 0 ? `${r} s` : ""].filter(Boolean).join(" ");
}
