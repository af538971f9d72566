// Pure: a pull's starting state from what discovery found (discovery.ts FoundPull).
import { blankStatus } from '../../common/contract.js';
import { RateWindow } from './rate.js';
import type { FoundPull } from './discovery.js';
import type { PullState } from './state.js';

/** "containerd.io/distribution.source.registry.test" = "team/app,other" → ["registry.test/team/app", …]. */
export function sourcesFromLabels(labels: Record<string, string>): string[] {
  const prefix = 'containerd.io/distribution.source.';
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!k.startsWith(prefix)) continue;
    const host = k.slice(prefix.length);
    for (const repo of v.split(',')) if (repo !== '') out.push(`${host}/${repo}`);
  }
  return out.sort();
}

/**
 * The new pull, and the blobs it fetched already (digest → size): blobs present when the
 * manifest is found were there before the pull (cached), unless they were committed after the
 * manifest (both times from containerd's clock) — then this pull fetched them (configs are
 * small and often land before the first poll). `now` and times in ms; `rateWindowMs` the
 * rate's window.
 */
export function newPull(
  f: FoundPull,
  now: number,
  rateWindowMs: number,
): { pull: PullState; fetched: Map<string, number> } {
  const key = f.index?.digest ?? f.manifest.digest;
  const startedAt = Math.min(now, (f.index ?? f.manifest).createdAt?.getTime() ?? now);
  const cached = new Set(f.unpacked);
  const fetched = new Map<string, number>();
  const manifestAt = f.manifest.createdAt?.getTime() ?? now;
  for (const [digest, info] of f.present) {
    if ((info.createdAt?.getTime() ?? 0) >= manifestAt) fetched.set(digest, info.size);
    else cached.add(digest);
  }
  const pull: PullState = {
    key,
    indexDigest: f.index?.digest ?? null,
    manifestDigest: f.manifest.digest,
    configDigest: f.doc.config.digest,
    sources: new Set([...sourcesFromLabels(f.manifest.labels), ...sourcesFromLabels(f.index?.labels ?? {})]),
    names: new Set(),
    blobs: f.blobs,
    layerOrder: f.doc.layers,
    layerDigests: new Set(f.doc.layers.map((l) => l.digest)),
    cached,
    snapshotsChecked: f.snapshotsChecked,
    startedAt,
    finishedAt: null,
    lastProgressAt: now,
    lastDone: 0,
    rateAtProgress: 0,
    idleSince: null,
    slowSince: null,
    rate: new RateWindow(rateWindowMs),
    percentFloor: 0,
    phase: 'Downloading',
    error: null,
    slow: false,
    status: { ...blankStatus(key, 'Downloading'), startedAt: new Date(startedAt).toISOString() },
  };
  return { pull, fetched };
}
