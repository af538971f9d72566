// Layers on the node as unpacked snapshots rather than blobs: with discard_unpacked_layers
// (EKS, GKE, kubespray) a layer's blob is deleted after unpack, but its snapshot stays, named
// by the layer's chain ID (OCI: from the config's rootfs.diff_ids).
import { isCode } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { ContainerdSource } from '../containerd/source.js';
import { MAX_MANIFEST_BYTES, chainIds, parseDiffIds, type BlobRef, type Manifest } from './manifest.js';

/**
 * Which of `missing` (layers of `doc` with no blob) are unpacked already: the committed
 * snapshot of their chain ID is in `snapshotter` (Snapshots/Stat, one per layer). Null when the
 * config is not committed yet (it is fetched first: retry); an empty set when it cannot be read
 * as an image config. Throws PT_CONTAINERD_UNAVAILABLE when containerd cannot be reached.
 */
export async function unpackedLayers(
  source: ContainerdSource,
  snapshotter: string,
  doc: Manifest,
  missing: BlobRef[],
  log: Logger,
): Promise<Set<string> | null> {
  let diffIds: string[];
  try {
    const cfg = await source.contentInfo(doc.config.digest);
    if (cfg === null) return null;
    diffIds = parseDiffIds(await source.readBlob(doc.config.digest, MAX_MANIFEST_BYTES));
  } catch (err) {
    if (isCode(err, 'PT_CONTAINERD_UNAVAILABLE')) throw err;
    log.debug({ err, config: doc.config.digest }, 'image config unreadable; layers not checked');
    return new Set();
  }
  if (diffIds.length !== doc.layers.length) return new Set();
  const chain = chainIds(diffIds);
  const want = new Set(missing.map((m) => m.digest));
  const out = new Set<string>();
  for (const [i, layer] of doc.layers.entries()) {
    const id = chain[i];
    if (id === undefined || !want.has(layer.digest) || out.has(layer.digest)) continue;
    const snap = await source.statSnapshot(snapshotter, id);
    if (snap?.kind === 'committed') out.add(layer.digest);
  }
  return out;
}
