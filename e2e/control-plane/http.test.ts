// The wire protocol of the control-plane stand-in, checked with plain fetch: discovery,
// Status errors, content negotiation (Table, PartialObjectMetadata), subresources.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import type { JsonObject } from './types.js';

let cp: ControlPlane;

before(async () => {
  cp = await startControlPlane();
});

after(async () => {
  await cp.stop();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: JsonObject }> {
  const res = await fetch(`${cp.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as JsonObject };
}

const TABLE_ACCEPT =
  'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

test('the kubeconfig points at the server, without credentials', () => {
  const text = readFileSync(cp.kubeconfigPath, 'utf8');
  assert.ok(text.includes(`server: ${cp.url}`));
  assert.doesNotMatch(text, /token|password|client-key/);
});

test('discovery: version 1.32, core resources with short names and subresources, the two groups', async () => {
  const version = await call('GET', '/version');
  assert.equal(version.json.minor, '32');
  const core = await call('GET', '/api/v1');
  const resources = core.json.resources as JsonObject[];
  const pods = resources.find((r) => r.name === 'pods');
  assert.deepEqual(pods?.shortNames, ['po']);
  assert.equal(pods.namespaced, true);
  for (const n of ['pods/status', 'pods/binding', 'events', 'namespaces']) {
    assert.ok(
      resources.some((r) => r.name === n),
      n,
    );
  }
  assert.equal(resources.find((r) => r.name === 'namespaces')?.namespaced, false);
  const groups = (await call('GET', '/apis')).json.groups as JsonObject[];
  assert.deepEqual(
    groups.map((g) => g.name),
    ['admissionregistration.k8s.io', 'apps'],
  );
  const admission = (await call('GET', '/apis/admissionregistration.k8s.io/v1')).json
    .resources as JsonObject[];
  assert.equal(admission.find((r) => r.name === 'mutatingwebhookconfigurations')?.namespaced, false);
  const apps = (await call('GET', '/apis/apps/v1')).json.resources as JsonObject[];
  assert.deepEqual(apps.find((r) => r.name === 'deployments')?.shortNames, ['deploy']);
  assert.equal((await call('GET', '/apis/batch/v1')).status, 404);
});

test('openapi v3: an index with hashed URLs, and per group-version PATCH operations with fieldValidation', async () => {
  const index = (await call('GET', '/openapi/v3')).json.paths as Record<
    string,
    { serverRelativeURL: string }
  >;
  const url = index['api/v1']?.serverRelativeURL ?? '';
  assert.match(url, /^\/openapi\/v3\/api\/v1\?hash=[0-9A-F]+$/);
  const doc = (await call('GET', url)).json.paths as Record<
    string,
    { patch?: { parameters: JsonObject[] } & JsonObject }
  >;
  const patch = doc['/api/v1/namespaces/{namespace}/pods/{name}']?.patch;
  assert.deepEqual(patch?.['x-kubernetes-group-version-kind'], { group: '', version: 'v1', kind: 'Pod' });
  assert.ok(patch.parameters.some((p) => p.name === 'fieldValidation' && p.in === 'query'));
});

test('errors are v1 Status objects with the API server reasons and codes', async () => {
  const missing = await call('GET', '/api/v1/namespaces/default/pods/nope');
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'pods "nope" not found',
    reason: 'NotFound',
    code: 404,
    details: { name: 'nope', group: '', kind: 'pods' },
  });
  const badPath = await call('GET', '/api/v1/namespaces/default/widgets');
  assert.equal(badPath.status, 404);
  assert.equal(badPath.json.kind, 'Status');
  const badJson = await call('POST', '/api/v1/namespaces/default/pods', '{nope');
  assert.equal(badJson.status, 400);
  assert.equal(badJson.json.reason, 'BadRequest');
  const badSelector = await call('GET', '/api/v1/pods?fieldSelector=spec.image%3Dx');
  assert.equal(badSelector.status, 400);
  assert.equal(badSelector.json.message, 'field label not supported: spec.image');
  await call('POST', '/api/v1/namespaces/default/pods', {
    metadata: { name: 'p415' },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });
  const apply = await call('PATCH', '/api/v1/namespaces/default/pods/p415', 'a: 1', {
    'content-type': 'application/apply-patch+yaml',
  });
  assert.equal(apply.status, 415);
  assert.equal(apply.json.reason, 'UnsupportedMediaType');
  const notAllowed = await call('POST', '/api/v1/namespaces/default/pods/p415', {});
  assert.equal(notAllowed.status, 405);
});

test('as=Table: server-computed cells and PartialObjectMetadata rows carrying kind and apiVersion', async () => {
  await call('POST', '/api/v1/namespaces/default/pods', {
    metadata: { name: 'tbl', labels: { 'pulltrace.io/progress': '7' } },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });
  const list = await call(
    'GET',
    '/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dtbl',
    undefined,
    { accept: TABLE_ACCEPT },
  );
  assert.equal(list.json.kind, 'Table');
  assert.equal(list.json.apiVersion, 'meta.k8s.io/v1');
  const rows = list.json.rows as { cells: unknown[]; object: JsonObject }[];
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0]?.cells.slice(0, 3), ['tbl', '0/1', 'Pending']);
  assert.equal(rows[0].object.kind, 'PartialObjectMetadata');
  assert.equal(rows[0].object.apiVersion, 'meta.k8s.io/v1');
  assert.deepEqual((rows[0].object.metadata as JsonObject).labels, { 'pulltrace.io/progress': '7' });
  const full = await call('GET', '/api/v1/namespaces/default/pods/tbl?includeObject=Object', undefined, {
    accept: TABLE_ACCEPT,
  });
  assert.equal((full.json.rows as { object: JsonObject }[])[0]?.object.kind, 'Pod');
  const meta = await call('GET', '/api/v1/namespaces/default/pods', undefined, {
    accept: 'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io',
  });
  assert.equal(meta.json.kind, 'PartialObjectMetadataList');
  const plain = await call('GET', '/api/v1/namespaces/default/pods/tbl', undefined, {
    accept: 'application/json',
  });
  assert.equal(plain.json.kind, 'Pod');
});

test('binding sets the node once; namespaces are served at /api/v1/namespaces/NAME', async () => {
  await call('POST', '/api/v1/namespaces/default/pods', {
    metadata: { name: 'bnd' },
    spec: { containers: [{ name: 'c', image: 'x' }] },
  });
  const bound = await call('POST', '/api/v1/namespaces/default/pods/bnd/binding', {
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name: 'bnd' },
    target: { kind: 'Node', name: 'node-1' },
  });
  assert.equal(bound.status, 201);
  assert.equal(cp.store.pods.get({ name: 'bnd' }).spec?.nodeName, 'node-1');
  const again = await call('POST', '/api/v1/namespaces/default/pods/bnd/binding', {
    target: { name: 'node-2' },
  });
  assert.equal(again.status, 409);
  const ns = await call('GET', '/api/v1/namespaces/kube-system');
  assert.equal(ns.json.kind, 'Namespace');
  const nsStatus = await call('GET', '/api/v1/namespaces/kube-system/status');
  assert.equal((nsStatus.json.status as JsonObject).phase, 'Active');
});

test('stop() closes the server and removes the kubeconfig it wrote', async () => {
  const other = await startControlPlane();
  assert.ok(existsSync(other.kubeconfigPath));
  await other.stop();
  await other.stop();
  assert.equal(existsSync(other.kubeconfigPath), false);
  await assert.rejects(fetch(`${other.url}/version`));
});
