// Tests of the Helm chart charts/pulltrace with the real helm (built by e2e/env/build-kube.sh;
// e2e/cluster/helm.ts runs it on a copy of the chart with the real cert-manager chart as its
// dependency): `helm lint` (also --strict, with the subchart, with the values files of
// charts/testdata/), values.schema.json as helm applies it, the objects `helm template` renders
// under many values and capabilities, and the rendered configuration parsed by the binaries' own
// option parsers. What only an API server can tell — the objects accepted, NOTES against a real
// cluster's API versions, the CEL of the webhook's matchConditions and of the
// MutatingAdmissionPolicy compared with the webhook's own decisions — is in chart-api.test.ts;
// the per-node ValidatingAdmissionPolicy in e2e/cluster/policy.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { parse } from 'yaml';
import { HelmError, helmLint, helmTemplate, certManagerVersion } from '../e2e/cluster/helm.js';
import { webhookConfiguration } from '../e2e/sandbox/sandbox.js';
import { addAgentOptions, agentConfig } from '../node-agent/config.js';
import { webhookCommand, webhookConfig } from '../webhook/config.js';
import { find, get, parseManifests, type Json, type Obj } from './manifests.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CHART = join(ROOT, 'charts/pulltrace');
const TEMPLATES = join(CHART, 'templates');
const TESTDATA = join(ROOT, 'charts/testdata');

type Values = Record<string, unknown>;

const readYaml = (path: string): unknown => parse(readFileSync(path, 'utf8'), { version: '1.1' });
const chartYaml = readYaml(join(CHART, 'Chart.yaml')) as Values;
const defaults = readYaml(join(CHART, 'values.yaml')) as Values;
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as Values;

// `--api-versions` beyond helm's defaults (which list group/versions, no kinds): a 1.34 cluster
// with cert-manager; one without ValidatingAdmissionPolicy (before 1.30); one serving
// MutatingAdmissionPolicy as v1beta1 (1.34 with the feature gate).
const VAP = [
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy',
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding',
];
const CLUSTER = ['cert-manager.io/v1', ...VAP];
const OLD_CLUSTER = ['cert-manager.io/v1'];
const MAP_BETA = [...CLUSTER, 'admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy'];

/** `helm template` with `values` as a `-f` file (so numbers are float64, as from any values file). */
async function render(values: Values = {}, apiVersions = CLUSTER, namespace = 'pulltrace'): Promise<Obj[]> {
  return parseManifests(await helmTemplate({ values, apiVersions, namespace }));
}

/** helm's error for `values` (the test fails if helm renders them). */
async function refusal(values: Values, opts: { skipSchemaValidation?: boolean } = {}): Promise<string> {
  try {
    await helmTemplate({ values, apiVersions: CLUSTER, ...opts });
  } catch (err) {
    if (err instanceof HelmError) return err.message;
    throw err;
  }
  assert.fail(`helm rendered ${JSON.stringify(values)}`);
}

/** Runs `fn` over `items`, `n` at a time (helm takes ~0.3 s a run on 2 cores). */
async function pool<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

interface Container {
  name: string;
  command: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
  ports: { name: string; containerPort: number }[];
  securityContext: Json;
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  resources: { requests?: Json; limits?: Json };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

function podSpec(workload: Obj): Json {
  return get(workload, 'spec.template.spec') as Json;
}

function container(workload: Obj): Container {
  const cs = podSpec(workload).containers as Container[];
  assert.equal(cs.length, 1);
  return cs[0]!;
}

function envOf(c: Container): Map<string, string> {
  return new Map(c.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value ?? '']));
}

/** Env vars → the flags commander knows them by, so the binaries' own parsers read them. */
function argsFromEnv(cmd: Command, env: Map<string, string>): string[] {
  const args: string[] = [];
  for (const [name, value] of env) {
    const opt = cmd.options.find((o) => o.envVar === name);
    assert.ok(opt !== undefined, `${name} is not an option of ${cmd.name()}`);
    args.push(opt.long ?? '', value);
  }
  return args;
}

function hooksOf(mwc: Obj): Json[] {
  return (mwc as unknown as { webhooks: Json[] }).webhooks;
}

// ---------------------------------------------------------------------------------------------

test('Chart.yaml: apiVersion v2, pinned cert-manager dependency behind certManager.install', () => {
  assert.equal(chartYaml.apiVersion, 'v2');
  assert.equal(chartYaml.name, 'pulltrace');
  assert.match(String(chartYaml.version), /^\d+\.\d+\.\d+$/);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(chartYaml.appVersion, pkg.version, 'appVersion is the package version');
  const deps = chartYaml.dependencies as Json[];
  assert.equal(deps.length, 1);
  const cm = deps[0]!;
  assert.equal(cm.name, 'cert-manager');
  assert.equal(cm.repository, 'https://charts.jetstack.io');
  assert.equal(cm.condition, 'certManager.install');
  assert.match(String(cm.version), /^v\d+\.\d+\.\d+$/, 'an exact version, not a range');
  assert.equal(certManagerVersion(), cm.version);
  assert.equal(get(defaults, 'certManager.install'), false, 'off by default');
  assert.equal(get(defaults, 'cert-manager.crds.enabled'), false, 'CRDs left to the user (see README)');
});

test('helm lint passes, also --strict, with the cert-manager subchart, and with every values file', async () => {
  const files = readdirSync(TESTDATA)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  assert.ok(files.length >= 6, `values files: ${files.join()}`);
  const runs: { name: string; opts: Parameters<typeof helmLint>[0] }[] = [
    { name: 'defaults', opts: {} },
    { name: 'defaults --strict', opts: { strict: true } },
    { name: 'defaults --strict --with-subcharts', opts: { strict: true, withSubcharts: true } },
    { name: 'kube 1.28 (the oldest Chart.yaml allows)', opts: { strict: true, kubeVersion: '1.28.0' } },
    ...files.map((f) => ({ name: f, opts: { strict: true, valuesFiles: [join(TESTDATA, f)] } })),
  ];
  const results = await pool(runs, 3, async (r) => ({ name: r.name, result: await helmLint(r.opts) }));
  for (const { name, result } of results) {
    assert.equal(result.code, 0, `${name}:\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /0 chart\(s\) failed/, name);
    assert.doesNotMatch(result.stdout, /\[(ERROR|WARNING)\]/, name);
  }
  // Lint reads values through the schema: a wrong type is an error.
  const bad = await helmLint({ values: { webhook: { replicas: '2' } } });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stdout, /\[ERROR\].*\/webhook\/replicas.*got string, want integer/);
});

test('values.schema.json: draft-07, closed at the top', () => {
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.equal(schema.additionalProperties, false);
});

test('helm refuses bad values by the schema and accepts the documented alternatives', async () => {
  const bad: [string, Values][] = [
    ['replica count as a string', { webhook: { replicas: '2' } }],
    ['zero replicas', { webhook: { replicas: 0 } }],
    ['unknown top-level key', { webhok: { replicas: 2 } }],
    ['unknown nested key (typo)', { nodeAgent: { containerd: { sockPath: '/x.sock' } } }],
    ['relative socket path', { nodeAgent: { containerd: { socketPath: 'run/containerd.sock' } } }],
    ['unknown mount mode', { nodeAgent: { containerd: { mount: 'file' } } }],
    ['log level not offered by the binaries', { webhook: { logLevel: 'verbose' } }],
    ['duration the binaries cannot parse', { nodeAgent: { stallAfter: '30 seconds' } }],
    ['tls mode secret without a secret', { webhook: { tls: { mode: 'secret' } } }],
    ['tls mode secret without the caBundle', { webhook: { tls: { mode: 'secret', secret: { name: 'x' } } } }],
    [
      'caBundle that is not base64',
      { webhook: { tls: { mode: 'secret', secret: { name: 'x', caBundle: '-----BEGIN' } } } },
    ],
    ['policy switch as a word', { nodeAgent: { sameNodePolicy: { enabled: 'yes' } } }],
    [
      'issuerRef without a name',
      { webhook: { tls: { certManager: { issuerRef: { kind: 'ClusterIssuer' } } } } },
    ],
    ['port out of range', { webhook: { port: 70000 } }],
    ['max writes per pull below the binary minimum', { nodeAgent: { maxWritesPerPull: 1 } }],
    ['unknown MutatingAdmissionPolicy version', { mutatingAdmissionPolicy: { apiVersion: 'v1' } }],
  ];
  const refused = await pool(bad, 3, async ([why, v]) => ({ why, message: await refusal(v) }));
  for (const { why, message } of refused) {
    assert.match(message, /values don't meet the specifications of the schema/, `should refuse: ${why}`);
  }
  const good: [string, Values][] = [
    [
      'secret mode with both',
      { webhook: { tls: { mode: 'secret', secret: { name: 'x', caBundle: 'Q0E=' } } } },
    ],
    ['socket group', { nodeAgent: { containerd: { socketGroup: 1001, mount: 'socket' } } }],
    [
      'socket group null (deleted, as values.yaml has it)',
      { nodeAgent: { containerd: { socketGroup: null } } },
    ],
    ['policy forced off', { nodeAgent: { sameNodePolicy: { enabled: false } } }],
    [
      'existing issuer',
      { webhook: { tls: { certManager: { issuerRef: { kind: 'ClusterIssuer', name: 'ca' } } } } },
    ],
    ['global from a parent chart', { global: { imageRegistry: 'x' } }],
  ];
  await pool(good, 3, async ([why, v]) => {
    await render(v).catch((err: unknown) => assert.fail(`${why}: ${String(err)}`));
  });
});

/** `.Values.a.b` paths in templates, including those read through `$x := .Values.a`. */
function valuesPathsUsed(): Map<string, string> {
  const used = new Map<string, string>();
  for (const file of readdirSync(TEMPLATES)) {
    const text = readFileSync(join(TEMPLATES, file), 'utf8');
    for (const m of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) used.set(m[1]!.slice(1), file);
    for (const m of text.matchAll(/\$(\w+)\s*:=\s*\.Values((?:\.\w+)+)\s*\}\}/g)) {
      const [, name, base] = m;
      for (const u of text.matchAll(new RegExp(`\\$${name}((?:\\.\\w+)+)`, 'g'))) {
        used.set(`${base!.slice(1)}${u[1]!}`, file);
      }
    }
  }
  return used;
}

function has(values: unknown, path: string): boolean {
  let v = values;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return false;
    v = (v as Json)[k];
  }
  return true;
}

/** Keys a user sets, per the schema: structured objects (with `required`) are walked. */
function leaves(values: Json, sch: Json, prefix = ''): string[] {
  const out: string[] = [];
  const props = (sch.properties ?? {}) as Record<string, Json>;
  for (const [k, v] of Object.entries(values)) {
    const p = prefix === '' ? k : `${prefix}.${k}`;
    const s = props[k] ?? {};
    if (s.properties !== undefined && s.required !== undefined && typeof v === 'object' && v !== null) {
      out.push(...leaves(v as Json, s, p));
    } else out.push(p);
  }
  return out;
}

test('every .Values path the templates read exists in values.yaml', () => {
  const used = valuesPathsUsed();
  assert.ok(used.size >= 40, `only ${used.size} paths found: the scan must read the templates`);
  assert.ok(used.has('nodeAgent.containerd.socketPath'), 'paths read through variables are found');
  const missing = [...used].filter(([p]) => !has(defaults, p)).map(([p, f]) => `${p} (${f})`);
  assert.deepEqual(missing, []);
});

test('every value in values.yaml is read by a template (or is the dependency switch)', () => {
  const used = [...valuesPathsUsed().keys()];
  const all = leaves(defaults, schema);
  assert.ok(all.length >= 60, `only ${all.length} values found`);
  const unused = all.filter(
    (leaf) =>
      !used.some((u) => u === leaf || u.startsWith(`${leaf}.`) || leaf.startsWith(`${u}.`)) &&
      leaf !== 'certManager.install' &&
      leaf !== 'cert-manager',
  );
  assert.deepEqual(unused, []);
  // The dependency switch is read by Chart.yaml's condition.
  assert.equal((chartYaml.dependencies as Json[])[0]?.condition, 'certManager.install');
});

test('README lists every value with its default', () => {
  const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
  const rows = new Map<string, string>();
  for (const m of readme.matchAll(/^\| `([^`]+)` \| `(.*?)` \|/gm)) rows.set(m[1]!, m[2]!);
  const problems: string[] = [];
  for (const leaf of leaves(defaults, schema)) {
    let v: unknown = defaults;
    for (const k of leaf.split('.')) v = (v as Json)[k];
    const row = rows.get(leaf);
    if (row === undefined) problems.push(`${leaf}: missing`);
    else if (JSON.stringify(JSON.parse(row)) !== JSON.stringify(v)) problems.push(`${leaf}: README ${row}`);
  }
  for (const key of rows.keys()) if (!has(defaults, key)) problems.push(`${key}: not a value`);
  assert.deepEqual(problems, []);
});

// ---------------------------------------------------------------------------------------------

test('default render: the expected objects, valid YAML, unique names, namespaced where they should be', async () => {
  const objects = await render();
  const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  assert.deepEqual(kinds, [
    'Certificate/pulltrace-ca',
    'Certificate/pulltrace-webhook',
    'ClusterRole/pulltrace-node-agent',
    'ClusterRoleBinding/pulltrace-node-agent',
    'DaemonSet/pulltrace-node-agent',
    'Deployment/pulltrace-webhook',
    'Issuer/pulltrace-ca',
    'Issuer/pulltrace-selfsigned',
    'MutatingWebhookConfiguration/pulltrace',
    'PodDisruptionBudget/pulltrace-webhook',
    'Service/pulltrace-webhook',
    'ServiceAccount/pulltrace-node-agent',
    'ServiceAccount/pulltrace-webhook',
    'ValidatingAdmissionPolicy/pulltrace-node-agent-same-node',
    'ValidatingAdmissionPolicyBinding/pulltrace-node-agent-same-node',
  ]);
  const clusterScoped = new Set([
    'ClusterRole',
    'ClusterRoleBinding',
    'MutatingWebhookConfiguration',
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
  ]);
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata.name}`;
    assert.ok(o.__file.startsWith('templates/'), `${id} from ${o.__file}`);
    assert.equal(typeof o.apiVersion, 'string', id);
    assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, id);
    assert.equal(o.metadata.namespace, clusterScoped.has(o.kind) ? undefined : 'pulltrace', id);
    assert.equal(o.metadata.labels?.['app.kubernetes.io/instance'], 'pulltrace', id);
    for (const v of Object.values(o.metadata.labels ?? {}))
      assert.equal(typeof v, 'string', `${id} label ${v}`);
  }
});

test('renders to valid objects under every combination of the switches', async () => {
  const variants: Values[] = [];
  for (const tls of [{ mode: 'certManager' }, { mode: 'secret', secret: { name: 's', caBundle: 'Q0E=' } }]) {
    for (const map of [false, true]) {
      for (const socketGroup of [null, 1001]) {
        for (const mount of ['directory', 'socket']) {
          for (const podAntiAffinity of ['soft', 'hard', 'none']) {
            variants.push({
              webhook: { tls, podAntiAffinity, readinessGateNamespaces: map ? ['shop'] : [] },
              mutatingAdmissionPolicy: { enabled: map },
              nodeAgent: { containerd: { socketGroup, mount } },
            });
          }
        }
      }
    }
  }
  variants.push(readYaml(join(TESTDATA, 'everything.yaml')) as Values);
  assert.equal(variants.length, 49);
  await pool(variants, 3, async (v) => {
    const objects = await render(v, MAP_BETA);
    for (const o of objects) {
      assert.ok(
        o.apiVersion !== '' && o.kind !== '' && o.metadata.name !== '',
        JSON.stringify(o).slice(0, 80),
      );
    }
    assert.ok(objects.some((o) => o.kind === 'DaemonSet'));
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    assert.equal(new Set(ids).size, ids.length, `unique names: ${JSON.stringify(v)}`);
  });
});

// ---------------------------------------------------------------------------------------------

test('MutatingWebhookConfiguration: never blocks, short timeout, no side effects, reinvocable', async () => {
  const objects = await render();
  const hooks = hooksOf(find(objects, 'MutatingWebhookConfiguration'));
  assert.equal(hooks.length, 1);
  const hook = hooks[0]!;
  assert.equal(hook.failurePolicy, 'Ignore');
  assert.equal(hook.timeoutSeconds, 2);
  assert.equal(hook.sideEffects, 'None');
  assert.equal(hook.reinvocationPolicy, 'IfNeeded');
  assert.deepEqual(hook.admissionReviewVersions, ['v1']);
  assert.deepEqual(hook.rules, [
    {
      operations: ['CREATE'],
      apiGroups: [''],
      apiVersions: ['v1'],
      resources: ['pods'],
      scope: 'Namespaced',
    },
  ]);
  assert.deepEqual(hook.namespaceSelector, {
    matchExpressions: [
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'pulltrace'] },
      { key: 'pulltrace.io/track', operator: 'NotIn', values: ['false'] },
    ],
  });
  // CEL matchConditions (their meaning, on the real API server: chart-api.test.ts); off: none.
  assert.deepEqual(
    (hook.matchConditions as { name: string }[]).map((c) => c.name),
    ['not-opted-out', 'has-work'],
  );
  const off = hooksOf(
    find(await render({ webhook: { matchConditions: false } }), 'MutatingWebhookConfiguration'),
  );
  assert.equal(off[0]!.matchConditions, undefined);
  // Another release namespace is excluded instead, and listed namespaces are not doubled.
  const other = await render({ webhook: { excludeNamespaces: ['kube-system', 'ops'] } }, CLUSTER, 'ops');
  assert.deepEqual(
    get(hooksOf(find(other, 'MutatingWebhookConfiguration'))[0], 'namespaceSelector.matchExpressions'),
    [
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'ops'] },
      { key: 'pulltrace.io/track', operator: 'NotIn', values: ['false'] },
    ],
  );
});

test('webhook TLS via cert-manager: the injected CA comes from the Certificate the pods mount', async () => {
  const objects = await render();
  const mwc = find(objects, 'MutatingWebhookConfiguration');
  const inject = mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'];
  assert.equal(inject, 'pulltrace/pulltrace-webhook');
  const [ns, certName] = inject.split('/');
  const cert = find(objects, 'Certificate', certName);
  assert.equal(cert.metadata.namespace, ns);
  const svc = find(objects, 'Service');
  const svcName = svc.metadata.name;
  assert.deepEqual(get(cert, 'spec.dnsNames'), [
    svcName,
    `${svcName}.pulltrace`,
    `${svcName}.pulltrace.svc`,
    `${svcName}.pulltrace.svc.cluster.local`,
  ]);
  // Issued by the chart's CA issuer, itself from the self-signed CA certificate.
  const issuerName = get(cert, 'spec.issuerRef.name') as string;
  const caIssuer = find(objects, 'Issuer', issuerName);
  const caCert = find(objects, 'Certificate', get(caIssuer, 'spec.ca.secretName') as string);
  assert.equal(get(caCert, 'spec.isCA'), true);
  assert.equal(
    get(find(objects, 'Issuer', get(caCert, 'spec.issuerRef.name') as string), 'spec.selfSigned') !==
      undefined,
    true,
  );
  // The pods mount the Secret the Certificate writes, and read the files the env names.
  const deploy = find(objects, 'Deployment');
  const volumes = podSpec(deploy).volumes as { name: string; secret?: { secretName: string } }[];
  const tls = volumes.find((v) => v.name === 'tls');
  assert.equal(tls?.secret?.secretName, get(cert, 'spec.secretName'));
  const c = container(deploy);
  const mount = c.volumeMounts.find((m) => m.name === 'tls');
  assert.equal(mount?.readOnly, true);
  assert.equal(envOf(c).get('PULLTRACE_TLS_CERT'), `${mount.mountPath}/tls.crt`);
  assert.equal(envOf(c).get('PULLTRACE_TLS_KEY'), `${mount.mountPath}/tls.key`);
  // The API server reaches the webhook: Service 443 → the container's https port → --listen.
  const client = get(hooksOf(mwc)[0], 'clientConfig') as Json;
  assert.equal(client.caBundle, undefined, 'cert-manager fills it in');
  assert.deepEqual(client.service, { name: svcName, namespace: 'pulltrace', path: '/mutate', port: 443 });
  const svcPort = (get(svc, 'spec.ports') as { port: number; targetPort: string }[]).find(
    (p) => p.port === 443,
  );
  const https = c.ports.find((p) => p.name === svcPort?.targetPort);
  assert.equal(https?.containerPort, 8443);
  assert.equal(envOf(c).get('PULLTRACE_LISTEN'), '0.0.0.0:8443');
});

test('an existing issuer replaces the chart CA', async () => {
  const objects = await render(readYaml(join(TESTDATA, 'existing-issuer.yaml')) as Values);
  assert.equal(objects.filter((o) => o.kind === 'Issuer').length, 0);
  const cert = find(objects, 'Certificate');
  assert.deepEqual(get(cert, 'spec.issuerRef'), {
    kind: 'ClusterIssuer',
    name: 'corp-ca',
    group: 'cert-manager.io',
  });
});

test('webhook TLS from a Secret made with certs/make-certs.sh: caBundle set, no cert-manager objects', async () => {
  const objects = await render({
    webhook: { tls: { mode: 'secret', secret: { name: 'pt-tls', caBundle: 'Q0E=' } } },
  });
  assert.equal(objects.filter((o) => o.kind === 'Issuer' || o.kind === 'Certificate').length, 0);
  const mwc = find(objects, 'MutatingWebhookConfiguration');
  assert.equal(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], undefined);
  assert.equal(get(hooksOf(mwc)[0], 'clientConfig.caBundle'), 'Q0E=');
  const volumes = podSpec(find(objects, 'Deployment')).volumes as {
    name: string;
    secret?: { secretName: string };
  }[];
  assert.equal(volumes.find((v) => v.name === 'tls')?.secret?.secretName, 'pt-tls');
  // The template itself refuses a missing caBundle or secret, schema aside.
  assert.match(
    await refusal(
      { webhook: { tls: { mode: 'secret', secret: { name: 'x' } } } },
      { skipSchemaValidation: true },
    ),
    /webhook\.tls\.secret\.caBundle is required/,
  );
  assert.match(
    await refusal(
      { webhook: { tls: { mode: 'secret', secret: { caBundle: 'Q0E=' } } } },
      { skipSchemaValidation: true },
    ),
    /webhook\.tls\.secret\.name is required/,
  );
});

test('the chart registers the webhook exactly as the e2e sandbox does (but url, caBundle, timeout)', async () => {
  const chart = find(await render(), 'MutatingWebhookConfiguration') as unknown as {
    metadata: Json;
    webhooks: Json[];
  };
  const sandbox = webhookConfiguration('https://127.0.0.1:1/mutate', 'Q0E=') as unknown as {
    metadata: Json;
    webhooks: Json[];
  };
  assert.equal(chart.metadata.name, sandbox.metadata.name);
  // The sandbox registers no matchConditions; their meaning is checked on the real API server
  // against the webhook's own decisions (chart-api.test.ts).
  const comparable = (hooks: Json[]) =>
    hooks.map((h) => {
      const { clientConfig: _c, timeoutSeconds: _t, matchConditions: _m, ...rest } = h;
      return rest;
    });
  assert.deepEqual(comparable(chart.webhooks), comparable(sandbox.webhooks));
  // Nothing else differs: a new field in the chart must reach the sandbox too.
  const extra = Object.keys(chart.webhooks[0]!).filter((k) => !(k in sandbox.webhooks[0]!));
  assert.deepEqual(extra, ['matchConditions']);
  assert.ok(
    (sandbox.webhooks[0]!.timeoutSeconds as number) >= (chart.webhooks[0]!.timeoutSeconds as number),
    'the sandbox timeout is the looser one (slow test machines), not a stricter one',
  );
});

// ---------------------------------------------------------------------------------------------

test('MutatingAdmissionPolicy replaces the webhook, at the newest API version the cluster serves', async () => {
  const objects = await render({ mutatingAdmissionPolicy: { enabled: true } }, MAP_BETA);
  for (const kind of [
    'Deployment',
    'Service',
    'MutatingWebhookConfiguration',
    'Certificate',
    'Issuer',
    'PodDisruptionBudget',
  ]) {
    assert.equal(objects.filter((o) => o.kind === kind).length, 0, `${kind} not rendered`);
  }
  assert.ok(!objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name.endsWith('-webhook')));
  const policy = find(objects, 'MutatingAdmissionPolicy');
  const binding = find(objects, 'MutatingAdmissionPolicyBinding');
  assert.equal(policy.apiVersion, 'admissionregistration.k8s.io/v1beta1');
  assert.equal(binding.apiVersion, policy.apiVersion);
  assert.equal(get(binding, 'spec.policyName'), policy.metadata.name);
  assert.equal(get(policy, 'spec.failurePolicy'), 'Ignore');
  assert.equal(get(policy, 'spec.reinvocationPolicy'), 'IfNeeded');
  // Same namespaces left out as for the webhook.
  const webhookSelector = get(
    hooksOf(find(await render(), 'MutatingWebhookConfiguration'))[0],
    'namespaceSelector',
  );
  assert.deepEqual(get(binding, 'spec.matchResources.namespaceSelector'), webhookSelector);
  // GA where served; v1alpha1 on 1.32; a chosen version for helm template; a clear failure.
  const ga = await render({ mutatingAdmissionPolicy: { enabled: true } }, [
    ...MAP_BETA,
    'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy',
  ]);
  assert.equal(find(ga, 'MutatingAdmissionPolicy').apiVersion, 'admissionregistration.k8s.io/v1');
  const alpha = await render({ mutatingAdmissionPolicy: { enabled: true } }, [
    ...CLUSTER,
    'admissionregistration.k8s.io/v1alpha1/MutatingAdmissionPolicy',
  ]);
  assert.equal(find(alpha, 'MutatingAdmissionPolicy').apiVersion, 'admissionregistration.k8s.io/v1alpha1');
  const chosen = await render(
    { mutatingAdmissionPolicy: { enabled: true, apiVersion: 'admissionregistration.k8s.io/v1alpha1' } },
    CLUSTER,
  );
  assert.equal(find(chosen, 'MutatingAdmissionPolicy').apiVersion, 'admissionregistration.k8s.io/v1alpha1');
  assert.match(
    await refusal({ mutatingAdmissionPolicy: { enabled: true } }),
    /serves no MutatingAdmissionPolicy API/,
  );
});

test('ValidatingAdmissionPolicy: bound to the agent in its namespace, Deny, Fail, pods and pods/status', async () => {
  // What it decides is checked on the real API server: e2e/cluster/policy.test.ts.
  const objects = await render({ nodeAgent: { serviceAccount: { name: 'agent-sa' } } }, CLUSTER, 'obs');
  const policy = find(objects, 'ValidatingAdmissionPolicy');
  const binding = find(objects, 'ValidatingAdmissionPolicyBinding');
  assert.equal(policy.apiVersion, 'admissionregistration.k8s.io/v1');
  assert.equal(get(binding, 'spec.policyName'), policy.metadata.name);
  assert.deepEqual(get(binding, 'spec.validationActions'), ['Deny']);
  assert.equal(find(objects, 'ServiceAccount', 'agent-sa').metadata.namespace, 'obs');
  assert.equal(get(policy, 'spec.failurePolicy'), 'Fail');
  assert.deepEqual(get(policy, 'spec.matchConstraints.resourceRules'), [
    { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods', 'pods/status'] },
  ]);
  const conditions = JSON.stringify(get(policy, 'spec.matchConditions'));
  assert.ok(conditions.includes('system:serviceaccount:obs:agent-sa'), conditions);
});

test('the node policy switch: auto follows the cluster, true forces it, false removes it', async () => {
  const kinds = async (values: Values, apis: string[]) =>
    (await render(values, apis)).filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy')).length;
  assert.equal(await kinds({}, CLUSTER), 2);
  assert.equal(await kinds({}, OLD_CLUSTER), 0);
  assert.equal(await kinds({ nodeAgent: { sameNodePolicy: { enabled: true } } }, OLD_CLUSTER), 2);
  assert.equal(await kinds({ nodeAgent: { sameNodePolicy: { enabled: false } } }, CLUSTER), 0);
});

test('certManager.install=true: the real cert-manager chart renders with the release', async () => {
  const objects = parseManifests(
    await helmTemplate({ valuesFiles: [join(TESTDATA, 'with-cert-manager.yaml')], apiVersions: CLUSTER }),
  );
  const fromDep = objects.filter((o) => o.__file.startsWith('charts/cert-manager/'));
  const ids = new Set(fromDep.map((o) => `${o.kind}/${o.metadata.name}`));
  for (const id of [
    'Deployment/pulltrace-cert-manager',
    'Deployment/pulltrace-cert-manager-cainjector',
    'Deployment/pulltrace-cert-manager-webhook',
    'CustomResourceDefinition/certificates.cert-manager.io',
    'CustomResourceDefinition/issuers.cert-manager.io',
  ]) {
    assert.ok(ids.has(id), `${id} in ${[...ids].join(', ')}`);
  }
  for (const o of fromDep.filter((x) => x.kind === 'Deployment')) {
    assert.equal(o.metadata.namespace, 'pulltrace', `${o.metadata.name} in the release namespace`);
    const image = String(
      get(podSpec(o), 'containers.0.image') ?? (podSpec(o).containers as Json[])[0]?.image,
    );
    assert.ok(image.endsWith(`:${certManagerVersion()}`), `${o.metadata.name}: ${image}`);
  }
  // The release's own objects are the same as without the dependency.
  const own = objects.filter((o) => o.__file.startsWith('templates/'));
  const plain = await render();
  assert.deepEqual(
    own.map((o) => `${o.kind}/${o.metadata.name}`).sort(),
    plain.map((o) => `${o.kind}/${o.metadata.name}`).sort(),
  );
  // By default (crds.enabled=false, as values.yaml sets it) no CRD comes with the release.
  const noCrds = parseManifests(
    await helmTemplate({ set: ['certManager.install=true'], apiVersions: CLUSTER }),
  );
  assert.equal(noCrds.filter((o) => o.kind === 'CustomResourceDefinition').length, 0);
  assert.ok(noCrds.some((o) => o.kind === 'Deployment' && o.metadata.name === 'pulltrace-cert-manager'));
});

// ---------------------------------------------------------------------------------------------

test('RBAC: the agent gets exactly the verbs it needs; the webhook gets none', async () => {
  const objects = await render();
  const role = find(objects, 'ClusterRole');
  assert.deepEqual(role.rules, [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  ]);
  const binding = find(objects, 'ClusterRoleBinding');
  assert.deepEqual(binding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'ClusterRole',
    name: role.metadata.name,
  });
  const agentSa = get(podSpec(find(objects, 'DaemonSet')), 'serviceAccountName');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: agentSa, namespace: 'pulltrace' }]);
  // No Role or binding names the webhook's ServiceAccount, and it mounts no token.
  const webhookSa = get(podSpec(find(objects, 'Deployment')), 'serviceAccountName');
  assert.equal(find(objects, 'ServiceAccount', webhookSa as string).automountServiceAccountToken, false);
  assert.equal(get(podSpec(find(objects, 'Deployment')), 'automountServiceAccountToken'), false);
  assert.equal(objects.filter((o) => o.kind === 'Role' || o.kind === 'RoleBinding').length, 0);
  assert.equal(objects.filter((o) => o.kind === 'ClusterRoleBinding').length, 1);
});

test('webhook Deployment: 2 replicas, spread, probes, resources, locked-down security context', async () => {
  const objects = await render();
  const deploy = find(objects, 'Deployment');
  assert.equal(get(deploy, 'spec.replicas'), 2);
  const selector = get(deploy, 'spec.selector.matchLabels') as Json;
  const podLabels = get(deploy, 'spec.template.metadata.labels') as Json;
  for (const [k, v] of Object.entries(selector)) assert.equal(podLabels[k], v, `pod label ${k}`);
  assert.deepEqual(get(find(objects, 'Service'), 'spec.selector'), selector);
  const pdb = find(objects, 'PodDisruptionBudget');
  assert.deepEqual(get(pdb, 'spec.selector.matchLabels'), selector);
  assert.equal(get(pdb, 'spec.maxUnavailable'), 1);
  const anti = get(
    podSpec(deploy),
    'affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution',
  ) as Json[];
  assert.equal(get(anti[0], 'podAffinityTerm.topologyKey'), 'kubernetes.io/hostname');
  assert.deepEqual(get(anti[0], 'podAffinityTerm.labelSelector.matchLabels'), selector);
  const hard = podSpec(find(await render({ webhook: { podAntiAffinity: 'hard' } }), 'Deployment'));
  assert.ok(
    get(hard, 'affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution') !== undefined,
  );
  const none = podSpec(find(await render({ webhook: { podAntiAffinity: 'none' } }), 'Deployment'));
  assert.equal(none.affinity, undefined);

  const c = container(deploy);
  assert.deepEqual(c.command, ['node', '/app/dist/webhook/main.js']);
  const metrics = c.ports.find((p) => p.name === 'metrics');
  assert.equal(metrics?.containerPort, 9090);
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
  assert.ok(c.resources.requests?.cpu !== undefined && c.resources.requests.memory !== undefined);
  assert.ok(c.resources.limits?.memory !== undefined);
  assert.deepEqual(get(podSpec(deploy), 'securityContext'), {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    fsGroup: 65532,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.deepEqual(c.securityContext, {
    runAsNonRoot: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  const volumes = podSpec(deploy).volumes as { name: string; secret?: { defaultMode: number } }[];
  assert.equal(volumes.find((v) => v.name === 'tls')?.secret?.defaultMode, 0o440);
});

test('the webhook container configuration is what the webhook binary accepts', async () => {
  const parse = async (values: Values) => {
    const env = envOf(container(find(await render(values), 'Deployment')));
    const cmd = webhookCommand().exitOverride();
    cmd.parse(argsFromEnv(cmd, env), { from: 'user' });
    return webhookConfig(cmd.opts<Parameters<typeof webhookConfig>[0]>());
  };
  const byDefault = await parse({});
  assert.deepEqual([...byDefault.mutate.readinessGateNamespaces], [], 'no namespace gated by default');
  assert.equal(byDefault.tls.reloadIntervalMs, 10_000);
  assert.equal(byDefault.log.level, 'info');
  const objects = await render({
    webhook: {
      readinessGateNamespaces: ['shop', 'ci'],
      logLevel: 'debug',
      port: 9443,
      certReloadInterval: '1m30s',
    },
  });
  const env = envOf(container(find(objects, 'Deployment')));
  const cmd = webhookCommand().exitOverride();
  cmd.parse(argsFromEnv(cmd, env), { from: 'user' });
  const config = webhookConfig(cmd.opts<Parameters<typeof webhookConfig>[0]>());
  assert.deepEqual(config.server.listen, { host: '0.0.0.0', port: 9443 });
  assert.deepEqual(config.metrics.listen, { host: '0.0.0.0', port: 9090 });
  assert.deepEqual([...config.mutate.readinessGateNamespaces], ['shop', 'ci']);
  assert.equal(config.tls.reloadIntervalMs, 90_000);
  assert.equal(config.log.level, 'debug');
  assert.equal(config.tls.certPath, '/etc/pulltrace/tls/tls.crt');
});

test('node agent DaemonSet: node name, every node, metrics, probes, tight security context', async () => {
  const objects = await render();
  const ds = find(objects, 'DaemonSet');
  const spec = podSpec(ds);
  assert.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
  assert.equal(spec.automountServiceAccountToken, true);
  assert.equal(spec.hostNetwork, undefined);
  assert.equal(spec.hostPID, undefined);
  const c = container(ds);
  assert.deepEqual(c.command, ['node', '/app/dist/node-agent/main.js']);
  assert.deepEqual(c.env.find((e) => e.name === 'PULLTRACE_NODE_NAME')?.valueFrom, {
    fieldRef: { fieldPath: 'spec.nodeName' },
  });
  assert.equal(c.ports.find((p) => p.name === 'metrics')?.containerPort, 9091);
  assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
  assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
  assert.deepEqual(c.securityContext, {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  // Root by default (the socket is root:root 0660), with no capability to bypass file modes.
  assert.deepEqual(spec.securityContext, {
    runAsNonRoot: false,
    runAsUser: 0,
    runAsGroup: 0,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  // With the socket's group: not root.
  const grouped = podSpec(
    find(await render({ nodeAgent: { containerd: { socketGroup: 1001 } } }), 'DaemonSet'),
  );
  assert.deepEqual(grouped.securityContext, {
    runAsNonRoot: true,
    runAsUser: 65532,
    runAsGroup: 65532,
    supplementalGroups: [1001],
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.equal(
    get(
      (await render({ nodeAgent: { priorityClassName: 'system-node-critical' } })).find(
        (o) => o.kind === 'DaemonSet',
      ),
      'spec.template.spec.priorityClassName',
    ),
    'system-node-critical',
  );
});

test('the containerd socket is mounted from the configured host path (k3s/RKE2 too)', async () => {
  const k3s = '/run/k3s/containerd/containerd.sock';
  for (const [mount, hostPath, type] of [
    ['directory', '/run/k3s/containerd', 'Directory'],
    ['socket', k3s, 'Socket'],
  ] as const) {
    const ds = find(await render({ nodeAgent: { containerd: { socketPath: k3s, mount } } }), 'DaemonSet');
    const volumes = podSpec(ds).volumes as { name: string; hostPath?: { path: string; type: string } }[];
    assert.deepEqual(volumes, [{ name: 'containerd', hostPath: { path: hostPath, type } }]);
    const c = container(ds);
    assert.deepEqual(c.volumeMounts, [{ name: 'containerd', mountPath: hostPath, readOnly: true }]);
    assert.equal(envOf(c).get('PULLTRACE_CONTAINERD_ADDRESS'), k3s);
    assert.ok(k3s === hostPath || k3s.startsWith(`${hostPath}/`), 'the socket is inside the mount');
  }
});

test('the node agent configuration is what the node-agent binary accepts (large numbers too)', async () => {
  const objects = await render({
    nodeAgent: {
      slowRate: 2_000_000,
      apiQps: 20,
      maxWritesPerPull: 40,
      pollInterval: '500ms',
      stallAfter: '1m',
      containerd: { socketPath: '/run/k0s/containerd.sock', namespace: 'k8s.io', snapshotter: 'native' },
    },
  });
  const env = envOf(container(find(objects, 'DaemonSet')));
  // Helm holds numbers from values as float64 and prints 2000000 as 2e+06 unless converted.
  assert.equal(env.get('PULLTRACE_SLOW_RATE'), '2000000');
  // The node name comes from the downward API; the kubelet fills it in.
  env.set('PULLTRACE_NODE_NAME', 'node-1');
  const cmd = addAgentOptions(new Command('pulltrace-node-agent')).exitOverride();
  cmd.parse(argsFromEnv(cmd, env), { from: 'user' });
  const config = agentConfig(cmd.opts<Parameters<typeof agentConfig>[0]>());
  assert.equal(config.tracker.slowRateBytesPerSecond, 2_000_000, 'not printed as 2e+06');
  assert.equal(config.budget.apiQps, 20);
  assert.equal(config.budget.maxWritesPerPull, 40);
  assert.equal(config.tracker.pollIntervalMs, 500);
  assert.equal(config.tracker.stallAfterMs, 60_000);
  assert.equal(config.containerd.address, '/run/k0s/containerd.sock');
  assert.equal(config.containerd.snapshotter, 'native');
  assert.equal(config.kube.kubeconfig, '', 'in-cluster configuration');
  assert.deepEqual(config.metrics.listen, { host: '0.0.0.0', port: 9091 });
});

test('scrape annotations follow the metrics ports', async () => {
  const objects = await render({ webhook: { metricsPort: 9191 }, nodeAgent: { metricsPort: 9292 } });
  const ann = (kind: string) => get(find(objects, kind), 'spec.template.metadata.annotations') as Json;
  assert.equal(ann('Deployment')['prometheus.io/port'], '9191');
  assert.equal(ann('DaemonSet')['prometheus.io/port'], '9292');
  assert.equal(
    get(
      find(await render({ metrics: { scrapeAnnotations: false } }), 'DaemonSet'),
      'spec.template.metadata.annotations',
    ),
    undefined,
  );
});
