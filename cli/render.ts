// Tables and lines for the kubectl plugin.
import { formatDuration } from '../common/contract.js';
import { alignColumns, formatBytesPair, formatRate, progressBar } from '../common/format.js';
import type { PodView } from './pod-view.js';

const FINAL = new Set<string>(['Pulled', 'Cached', 'Failed']);

export interface Row {
  pod: string;
  image: string;
  phase: string;
  percent: number | null;
  bytes: string;
  rate: string;
  eta: string;
}

export function rows(views: PodView[]): Row[] {
  const out: Row[] = [];
  for (const v of views) {
    const pod = `${v.namespace}/${v.name}`;
    if (v.status === null || v.status.images.length === 0) {
      let phase = 'Waiting';
      if (!v.tracked) phase = 'NotTracked';
      else if (v.condition !== null) phase = v.condition.reason;
      else if (v.containersStarted) phase = 'Running';
      out.push({ pod, image: '-', phase, percent: null, bytes: '-', rate: '-', eta: '-' });
      continue;
    }
    for (const img of v.status.images) {
      // The kubelet has started the containers, so every image is present, even if the agent's
      // last write (held back by its minimum interval) still shows the pull under way.
      if (v.containersStarted && !FINAL.has(img.phase)) {
        out.push({
          pod,
          image: img.image,
          phase: 'Pulled',
          percent: 100,
          bytes: img.bytesTotal > 0 ? formatBytesPair(img.bytesTotal, img.bytesTotal) : '-',
          rate: '-',
          eta: '-',
        });
        continue;
      }
      out.push({
        pod,
        image: img.image,
        phase: img.phase,
        percent: img.percent,
        bytes: img.bytesTotal > 0 ? formatBytesPair(img.bytesDone, img.bytesTotal) : '-',
        rate: img.bytesPerSecond > 0 ? formatRate(img.bytesPerSecond) : '-',
        eta: img.etaSeconds === null ? '-' : formatDuration(img.etaSeconds),
      });
    }
  }
  return out;
}

/** Aligned columns; with `bars`, a progress bar beside the percent. */
export function table(rs: Row[], bars: boolean): string {
  const header = ['POD', 'IMAGE', 'PHASE', 'PROGRESS', 'BYTES', 'RATE', 'ETA'];
  const cells = rs.map((r) => [
    r.pod,
    r.image,
    r.phase,
    r.percent === null ? '-' : bars ? `${progressBar(r.percent, 20)} ${r.percent}%` : `${r.percent}%`,
    r.bytes,
    r.rate,
    r.eta,
  ]);
  return alignColumns([header, ...cells]);
}

/** One plain line per row, for logs (CI): stable, greppable. */
export function line(r: Row): string {
  const pct = r.percent === null ? '-' : `${r.percent}%`;
  return `${r.pod} ${r.image} ${r.phase} ${pct} ${r.bytes} ${r.rate} eta=${r.eta}`;
}

/**
 * Cuts each line to fewer than `columns` characters (with an ellipsis), so a table redrawn in
 * place on a terminal never wraps: a wrapped line would throw off the count of lines to redraw.
 */
export function fitWidth(text: string, columns: number | undefined): string {
  if (columns === undefined || columns < 2) return text;
  return text
    .split('\n')
    .map((l) => (l.length < columns ? l : `${l.slice(0, columns - 2)}…`))
    .join('\n');
}
