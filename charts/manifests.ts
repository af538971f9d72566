// Reading what the real helm prints (`helm template`, a release's manifest) as Kubernetes
// objects, for the chart's tests. YAML is read as YAML 1.1, as Kubernetes reads it (sigs.k8s.io/yaml:
// `0440` is octal).
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';

export type Json = Record<string, unknown>;

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

/** An object with the template it came from (helm's `# Source:` line), e.g. `templates/x.yaml`. */
export type Obj = KubeObject & { __file: string };

function isMap(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every non-empty document of a helm manifest stream. Throws on invalid YAML. */
export function parseManifests(stream: string, chartName = 'pulltrace'): Obj[] {
  const out: Obj[] = [];
  for (const part of stream.split(/^---\s*$/m)) {
    const source = /^# Source: (\S+)/m.exec(part)?.[1] ?? '';
    const file = source.startsWith(`${chartName}/`) ? source.slice(chartName.length + 1) : source;
    for (const doc of parseAllDocuments(part, { version: '1.1' })) {
      if (doc.errors.length > 0) {
        throw new Error(
          `${file}: rendered YAML is not valid: ${doc.errors.map((e) => e.message).join('; ')}`,
        );
      }
      const obj: unknown = doc.toJS();
      if (obj === null || obj === undefined) continue;
      if (!isMap(obj)) throw new Error(`${file}: a rendered document is not an object`);
      out.push({ ...(obj as KubeObject), __file: file });
    }
  }
  return out;
}

/** The one object of `kind` (and `name`); fails the test unless there is exactly one. */
export function find(objects: Obj[], kind: string, name?: string): Obj {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  const [first] = found;
  assert.ok(
    found.length === 1 && first !== undefined,
    `exactly one ${kind}${name === undefined ? '' : `/${name}`} (found ${found.length})`,
  );
  return first;
}

/** `a.b.c` of an object, undefined where a step is missing. */
export function get(o: unknown, path: string): unknown {
  let v = o;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Json)[k];
  }
  return v;
}
