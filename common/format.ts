// Human-readable figures, one way everywhere (condition message, events, CLI tables).
// Decimal units (1 MB = 10^6 bytes), as registries and `crictl images` print sizes.

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'] as const;

function scale(bytes: number): { value: number; unit: string } {
  let value = Math.max(0, bytes);
  let i = 0;
  while (value >= 1000 && i < UNITS.length - 1) {
    value /= 1000;
    i++;
  }
  return { value, unit: UNITS[i] ?? 'B' };
}

/** 42_100_000 → "42.1 MB"; 512 → "512 B". */
export function formatBytes(bytes: number): string {
  const { value, unit } = scale(bytes);
  return unit === 'B' ? `${Math.round(value)} B` : `${value.toFixed(1)} ${unit}`;
}

/** A pair in the larger value's unit: (42.1e6, 67e6) → "42.1/67.0 MB". */
export function formatBytesPair(done: number, total: number): string {
  const { unit } = scale(Math.max(done, total));
  const i = Math.max(0, UNITS.indexOf(unit as (typeof UNITS)[number]));
  const div = 1000 ** i;
  const digits = i === 0 ? 0 : 1;
  return `${(Math.max(0, done) / div).toFixed(digits)}/${(Math.max(0, total) / div).toFixed(digits)} ${unit}`;
}

/** 5_100_000 → "5.1 MB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A text progress bar of `width` cells: "[#######.......]". */
export function progressBar(percent: number, width = 20): string {
  const p = Math.min(100, Math.max(0, Math.floor(percent)));
  const filled = Math.round((p / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** Left-aligned columns two spaces apart, the first row being the header (as kubectl prints). */
export function alignColumns(rows: string[][]): string {
  const width = (i: number) => Math.max(...rows.map((r) => (r[i] ?? '').length));
  const widths = (rows[0] ?? []).map((_, i) => width(i));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * Shortens a long error to at most `max` characters, keeping its start (a third) and its end:
 * Go errors wrap ("a: b: c: not found"), so the cause is at the end. The cut falls between
 * words where one is near (within half of each part), so no host or name is cut in two.
 */
export function keepEnds(raw: string, max: number): string {
  const text = oneLine(raw);
  if (text.length <= max) return text;
  const headMax = Math.floor((max - 3) / 3);
  const tailMax = max - 3 - headMax;
  // The head ends before a space; the tail starts after one.
  const space = text.lastIndexOf(' ', headMax);
  const head = space >= headMax * 0.5 ? space : headMax;
  const from = text.length - tailMax;
  const next = text.indexOf(' ', from);
  const tail = next !== -1 && next + 1 - from <= tailMax * 0.5 ? next + 1 : from;
  return `${text.slice(0, head).trimEnd()} … ${text.slice(tail).trimStart()}`;
}

/** Runs of whitespace and control characters folded into one space: messages are one line. */
export function oneLine(text: string): string {
  return text.replace(/[\s\p{Cc}]+/gu, ' ');
}
