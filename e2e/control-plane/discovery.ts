// Discovery documents (/version, /api, /api/v1, /apis, /apis/G, /apis/G/V) and a minimal
// OpenAPI v3 (/openapi/v3 and one document per group-version) built from the served types.
// kubectl needs discovery for every command; it reads OpenAPI v3 to learn that the server
// does field validation (a PATCH operation per kind with a `fieldValidation` query parameter)
// and then leaves validation to the server instead of downloading full schemas.
import { createHash } from 'node:crypto';
import { apiVersionOf, type ResourceType } from './resources.js';
import type { JsonObject } from './types.js';

/** The Kubernetes minor version reported; /usr/bin/kubectl runs the kubectl of that minor. */
export const KUBE_MINOR = '32';

export function versionInfo(): JsonObject {
  return {
    major: '1',
    minor: KUBE_MINOR,
    gitVersion: `v1.${KUBE_MINOR}.0`,
    gitCommit: 'pulltrace-control-plane-stand-in',
    gitTreeState: 'clean',
    buildDate: '2025-01-01T00:00:00Z',
    goVersion: 'none',
    compiler: 'none',
    platform: 'linux/amd64',
  };
}

/** `group/version` strings of the served non-core groups, sorted, one version per group. */
function groupVersions(types: readonly ResourceType[]): { group: string; version: string }[] {
  const seen = new Map<string, string>();
  for (const t of types) if (t.group !== '') seen.set(t.group, t.version);
  return [...seen.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([group, version]) => ({ group, version }));
}

export function coreVersions(serverAddress: string): JsonObject {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function apiGroup(group: string, version: string): JsonObject {
  const gv = { groupVersion: `${group}/${version}`, version };
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions: [gv], preferredVersion: gv };
}

export function groupList(types: readonly ResourceType[]): JsonObject {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groupVersions(types).map(({ group, version }) => {
      const { kind: _k, apiVersion: _a, ...g } = apiGroup(group, version);
      return g;
    }),
  };
}

/** /apis/GROUP, or null when the group is not served. */
export function groupDoc(types: readonly ResourceType[], group: string): JsonObject | null {
  const gv = groupVersions(types).find((g) => g.group === group);
  return gv === undefined ? null : apiGroup(gv.group, gv.version);
}

const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

/** /api/v1 or /apis/G/V, or null when nothing is served there. */
export function resourceList(
  types: readonly ResourceType[],
  group: string,
  version: string,
): JsonObject | null {
  const mine = types.filter((t) => t.group === group && t.version === version);
  if (mine.length === 0) return null;
  const resources: JsonObject[] = [];
  for (const t of mine) {
    resources.push({
      name: t.resource,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
      ...(t.shortNames === undefined ? {} : { shortNames: t.shortNames }),
      ...(t.categories === undefined ? {} : { categories: t.categories }),
    });
    for (const sub of t.subresources) {
      const base = { name: `${t.resource}/${sub}`, singularName: '', namespaced: t.namespaced };
      if (sub === 'status') resources.push({ ...base, kind: t.kind, verbs: ['get', 'patch', 'update'] });
      if (sub === 'binding') resources.push({ ...base, kind: 'Binding', verbs: ['create'] });
      if (sub === 'scale') {
        resources.push({
          ...base,
          group: 'autoscaling',
          version: 'v1',
          kind: 'Scale',
          verbs: ['get', 'patch', 'update'],
        });
      }
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: apiVersionOf({ group, version, resource: '' }),
    resources,
  };
}

/** The path key of a group-version in /openapi/v3: `api/v1`, `apis/apps/v1`. */
function openApiKey(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

/** One OpenAPI v3 document per group-version, keyed like /openapi/v3 lists them. */
export function openApiDocs(types: readonly ResourceType[]): Map<string, JsonObject> {
  const byGv = new Map<string, ResourceType[]>();
  for (const t of types) {
    const k = openApiKey(t.group, t.version);
    byGv.set(k, [...(byGv.get(k) ?? []), t]);
  }
  const docs = new Map<string, JsonObject>();
  for (const [k, list] of byGv) {
    const paths: JsonObject = {};
    const schemas: JsonObject = {};
    for (const t of list) {
      const gvk = { group: t.group, version: t.version, kind: t.kind };
      const op = (action: string) => ({
        'x-kubernetes-action': action,
        'x-kubernetes-group-version-kind': gvk,
        parameters: [
          { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
          { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
        ],
        responses: { '200': { description: 'OK' } },
      });
      const base = t.namespaced ? `/${k}/namespaces/{namespace}/${t.resource}` : `/${k}/${t.resource}`;
      paths[base] = { post: op('post'), get: { ...op('list'), parameters: [] } };
      paths[`${base}/{name}`] = {
        get: { ...op('get'), parameters: [] },
        put: op('put'),
        patch: op('patch'),
        delete: op('delete'),
      };
      schemas[`${t.group === '' ? 'io.k8s.api.core' : t.group}.${t.version}.${t.kind}`] = {
        type: 'object',
        'x-kubernetes-group-version-kind': [gvk],
      };
    }
    docs.set(k, {
      openapi: '3.0.0',
      info: { title: 'Kubernetes (pulltrace control-plane stand-in)', version: `v1.${KUBE_MINOR}.0` },
      paths,
      components: { schemas },
    });
  }
  return docs;
}

/** The /openapi/v3 index pointing at each document with a content hash, as the API server does. */
export function openApiIndex(docs: Map<string, JsonObject>): JsonObject {
  const paths: JsonObject = {};
  for (const [k, doc] of docs) {
    const hash = createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 32).toUpperCase();
    paths[k] = { serverRelativeURL: `/openapi/v3/${k}?hash=${hash}` };
  }
  return { paths };
}
