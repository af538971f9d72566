// Tests of the Helm chart charts/pulltrace where no helm binary exists: Chart.yaml and
// values.yaml read as YAML, values.yaml against values.schema.json (draft-07, as Helm uses),
// the templates rendered by charts/render-chart.ts under many values and checked as
// Kubernetes objects, the rendered configuration parsed by the binaries' own option parsers,
// the CEL expressions run against the webhook's own decisions, and the webhook configuration
// compared with the one the e2e sandbox registers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { Command } from 'commander';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { webhookConfiguration } from '../e2e/sandbox/sandbox.js';
import { addAgentOptions, agentConfig } from '../node-agent/config.js';
import { webhookCommand, webhookConfig } from '../webhook/config.js';
import { admit } from '../webhook/mutate.js';
import { evalCel } from './cel-subset.js';
import { mergeValues, readYaml, renderChart, type KubeObject, type Values } from './render-chart.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CHART = join(ROOT, 'charts/pulltrace');
const TEMPLATES = join(CHART, 'templates');

const chartYaml = readYaml(join(CHART, 'Chart.yaml')) as Values;
const defaults = readYaml(join(CHART, 'values.yaml')) as Values;
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as Values;
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validateValues = ajv.compile(schema);

/** API versions of a cluster like 1.33 with cert-manager. */
const CLUSTER = [
  'v1',
  'apps/v1',
  'policy/v1',
  'rbac.authorization.k8s.io/v1',
  'admissionregistration.k8s.io/v1',
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration',
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy',
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding',
  'cert-manager.io/v1',
];
const OLD_CLUSTER = CLUSTER.filter((v) => !v.includes('ValidatingAdmissionPolicy'));
const MAP_BETA = [
  ...CLUSTER,
  'admissionregistration.k8s.io/v1beta1',
  'admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy',
];

type Obj = KubeObject & { __file: string };
type Json = Record<string, unknown>;

/** Like `helm template`: the merged values must pass the schema, then the chart is rendered. */
function render(values: Values = {}, apiVersions = CLUSTER, namespace = 'pulltrace') {
  const merged = mergeValues(defaults, values);
  if (!validateValues(merged)) {
    throw new Error(`values rejected by the schema: ${ajv.errorsText(validateValues.errors)}`);
  }
  return renderChart(CHART, { values, apiVersions, namespace, kubeVersion: 'v1.33.0' });
}

function find(objects: Obj[], kind: string, name?: string): Obj {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `exactly one ${kind}${name === undefined ? '' : `/${name}`}`);
  return found[0]!;
}

function get(o: unknown, path: string): unknown {
  let v = o;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Json)[k];
  }
  return v;
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
  assert.equal(get(defaults, 'certManager.install'), false, 'off by default');
  assert.equal(get(defaults, 'cert-manager.crds.enabled'), false, 'CRDs left to the user (see README)');
});

test('values.schema.json is a valid draft-07 schema and values.yaml passes it', () => {
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.equal(ajv.validateSchema(schema), true, ajv.errorsText(ajv.errors));
  assert.equal(validateValues(defaults), true, ajv.errorsText(validateValues.errors));
  assert.equal(schema.additionalProperties, false);
});

test('the schema refuses bad values and accepts the documented alternatives', () => {
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
  for (const [why, v] of bad) {
    assert.equal(validateValues(mergeValues(defaults, v)), false, `should refuse: ${why}`);
  }
  const good: [string, Values][] = [
    [
      'secret mode with both',
      { webhook: { tls: { mode: 'secret', secret: { name: 'x', caBundle: 'Q0E=' } } } },
    ],
    ['socket group', { nodeAgent: { containerd: { socketGroup: 1001, mount: 'socket' } } }],
    ['policy forced off', { nodeAgent: { sameNodePolicy: { enabled: false } } }],
    [
      'existing issuer',
      { webhook: { tls: { certManager: { issuerRef: { kind: 'ClusterIssuer', name: 'ca' } } } } },
    ],
    ['global from a parent chart', { global: { imageRegistry: 'x' } }],
  ];
  for (const [why, v] of good) {
    assert.equal(
      validateValues(mergeValues(defaults, v)),
      true,
      `${why}: ${ajv.errorsText(validateValues.errors)}`,
    );
  }
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

test('default render: the expected objects, valid YAML, unique names, namespaced where they should be', () => {
  const { objects } = render();
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
    assert.equal(typeof o.apiVersion, 'string', id);
    assert.match(o.metadata.name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, id);
    assert.equal(o.metadata.namespace, clusterScoped.has(o.kind) ? undefined : 'pulltrace', id);
    assert.equal(o.metadata.labels?.['app.kubernetes.io/instance'], 'pulltrace', id);
    for (const v of Object.values(o.metadata.labels ?? {}))
      assert.equal(typeof v, 'string', `${id} label ${v}`);
  }
});

test('renders to valid objects under every combination of the switches', () => {
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
  variants.push({
    fullnameOverride: 'pt',
    commonLabels: { team: 'platform' },
    imagePullSecrets: ['regcred'],
    image: { digest: `sha256:${'a'.repeat(64)}` },
    webhook: {
      podAnnotations: { a: 'b' },
      podLabels: { c: 'd' },
      tolerations: [{ operator: 'Exists' }],
      topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'ScheduleAnyway' }],
      priorityClassName: 'high',
      serviceAccount: { create: false, name: 'existing' },
      tls: { certManager: { issuerRef: { kind: 'ClusterIssuer', name: 'ca', group: 'cert-manager.io' } } },
      affinity: { nodeAffinity: {} },
      matchConditions: false,
    },
    nodeAgent: { priorityClassName: 'system-node-critical', podAnnotations: { e: 'f' }, affinity: { x: {} } },
    metrics: { scrapeAnnotations: false },
  });
  for (const v of variants) {
    const { objects, notes } = render(v, MAP_BETA);
    for (const o of objects) {
      assert.ok(
        o.apiVersion !== '' && o.kind !== '' && o.metadata.name !== '',
        JSON.stringify(o).slice(0, 80),
      );
    }
    assert.ok(objects.some((o) => o.kind === 'DaemonSet'));
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    assert.equal(new Set(ids).size, ids.length, `unique names: ${JSON.stringify(v)}`);
    assert.ok(notes.includes('rollout status daemonset/'), 'NOTES render');
  }
  assert.equal(variants.length, 49);
});

// ---------------------------------------------------------------------------------------------

test('MutatingWebhookConfiguration: never blocks, short timeout, no side effects, reinvocable', () => {
  const { objects } = render();
  const mwc = find(objects, 'MutatingWebhookConfiguration');
  const hooks = (mwc as unknown as { webhooks: Json[] }).webhooks;
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
  // Another release namespace is excluded instead, and listed namespaces are not doubled.
  const other = render({ webhook: { excludeNamespaces: ['kube-system', 'ops'] } }, CLUSTER, 'ops');
  const otherHook = (find(other.objects, 'MutatingWebhookConfiguration') as unknown as { webhooks: Json[] })
    .webhooks[0]!;
  assert.deepEqual(get(otherHook, 'namespaceSelector.matchExpressions'), [
    { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'ops'] },
    { key: 'pulltrace.io/track', operator: 'NotIn', values: ['false'] },
  ]);
});

test('webhook TLS via cert-manager: the injected CA comes from the Certificate the pods mount', () => {
  const { objects } = render();
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
  const client = get((mwc as unknown as { webhooks: Json[] }).webhooks[0], 'clientConfig') as Json;
  assert.equal(client.caBundle, undefined, 'cert-manager fills it in');
  assert.deepEqual(client.service, { name: svcName, namespace: 'pulltrace', path: '/mutate', port: 443 });
  const svcPort = (get(svc, 'spec.ports') as { port: number; targetPort: string }[]).find(
    (p) => p.port === 443,
  );
  const https = c.ports.find((p) => p.name === svcPort?.targetPort);
  assert.equal(https?.containerPort, 8443);
  assert.equal(envOf(c).get('PULLTRACE_LISTEN'), '0.0.0.0:8443');
});

test('an existing issuer replaces the chart CA', () => {
  const { objects } = render({
    webhook: {
      tls: {
        certManager: { issuerRef: { kind: 'ClusterIssuer', name: 'corp-ca', group: 'cert-manager.io' } },
      },
    },
  });
  assert.equal(objects.filter((o) => o.kind === 'Issuer').length, 0);
  const cert = find(objects, 'Certificate');
  assert.deepEqual(get(cert, 'spec.issuerRef'), {
    kind: 'ClusterIssuer',
    name: 'corp-ca',
    group: 'cert-manager.io',
  });
});

test('webhook TLS from a Secret made with certs/make-certs.sh: caBundle set, no cert-manager objects', () => {
  const values = { webhook: { tls: { mode: 'secret', secret: { name: 'pt-tls', caBundle: 'Q0E=' } } } };
  const { objects, notes } = render(values);
  assert.equal(objects.filter((o) => o.kind === 'Issuer' || o.kind === 'Certificate').length, 0);
  const mwc = find(objects, 'MutatingWebhookConfiguration');
  assert.equal(mwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], undefined);
  assert.equal(get((mwc as unknown as { webhooks: Json[] }).webhooks[0], 'clientConfig.caBundle'), 'Q0E=');
  const volumes = podSpec(find(objects, 'Deployment')).volumes as {
    name: string;
    secret?: { secretName: string };
  }[];
  assert.equal(volumes.find((v) => v.name === 'tls')?.secret?.secretName, 'pt-tls');
  assert.ok(!notes.includes('WARNING'), 'no cert-manager warning in secret mode');
  // The template itself refuses a missing caBundle or secret, schema aside (helm --skip-schema-validation).
  assert.throws(
    () => renderChart(CHART, { values: { webhook: { tls: { mode: 'secret', secret: { name: 'x' } } } } }),
    /webhook\.tls\.secret\.caBundle is required/,
  );
  assert.throws(
    () =>
      renderChart(CHART, { values: { webhook: { tls: { mode: 'secret', secret: { caBundle: 'Q0E=' } } } } }),
    /webhook\.tls\.secret\.name is required/,
  );
});

test('NOTES warn when cert-manager is needed but the cluster does not serve it', () => {
  const without = render(
    {},
    CLUSTER.filter((v) => v !== 'cert-manager.io/v1'),
  );
  assert.match(without.notes, /WARNING: webhook\.tls\.mode is certManager/);
  assert.ok(!render().notes.includes('WARNING'));
  assert.match(render().notes, /rollout status deployment\/pulltrace-webhook/);
  assert.match(render().notes, /-L pulltrace\.io\/progress,pulltrace\.io\/eta/);
});

test('the chart registers the webhook exactly as the e2e sandbox does (but url, caBundle, timeout)', () => {
  const { objects } = render();
  const chart = find(objects, 'MutatingWebhookConfiguration') as unknown as {
    metadata: Json;
    webhooks: Json[];
  };
  const sandbox = webhookConfiguration('https://127.0.0.1:1/mutate', 'Q0E=') as unknown as {
    metadata: Json;
    webhooks: Json[];
  };
  assert.equal(chart.metadata.name, sandbox.metadata.name);
  // matchConditions are CEL, which the sandbox's API server stand-in cannot run (it refuses
  // them); their meaning is checked below against the webhook's own decisions instead.
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
// CEL: what the API server would decide, against what the webhook would do.

interface PodCase {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  gates?: { conditionType: string }[];
}

function podCases(): PodCase[] {
  const labelSets: (Record<string, string> | undefined)[] = [
    undefined,
    {},
    { app: 'x' },
    { 'pulltrace.io/tracked': 'true' },
    { 'pulltrace.io/track': 'false' },
  ];
  const annotationSets: (Record<string, string> | undefined)[] = [
    undefined,
    { 'pulltrace.io/track': 'false' },
    { 'pulltrace.io/readiness-gate': 'true' },
    { 'pulltrace.io/readiness-gate': 'false' },
  ];
  const gateSets = [
    undefined,
    [],
    [{ conditionType: 'other' }],
    [{ conditionType: 'pulltrace.io/ImagesPulled' }],
  ];
  const out: PodCase[] = [];
  for (const labels of labelSets) {
    for (const annotations of annotationSets) {
      for (const gates of gateSets) {
        const c: PodCase = {};
        if (labels !== undefined) c.labels = labels;
        if (annotations !== undefined) c.annotations = annotations;
        if (gates !== undefined) c.gates = gates;
        out.push(c);
      }
    }
  }
  return out;
}

function podObject(c: PodCase, namespace: string): Json {
  const metadata: Json = { name: 'p', namespace };
  if (c.labels !== undefined) metadata.labels = c.labels;
  if (c.annotations !== undefined) metadata.annotations = c.annotations;
  const spec: Json = { containers: [{ name: 'c', image: 'nginx' }] };
  if (c.gates !== undefined) spec.readinessGates = c.gates;
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec };
}

function reviewFor(pod: Json, namespace: string): Json {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'u',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace,
      operation: 'CREATE',
      object: pod,
    },
  };
}

test('matchConditions send the webhook exactly the pods it would change', () => {
  let checked = 0;
  let skipped = 0;
  for (const gated of [[], ['shop']]) {
    const { objects } = render({ webhook: { readinessGateNamespaces: gated } });
    const hook = (find(objects, 'MutatingWebhookConfiguration') as unknown as { webhooks: Json[] })
      .webhooks[0]!;
    const conditions = hook.matchConditions as { name: string; expression: string }[];
    assert.deepEqual(
      conditions.map((c) => c.name),
      ['not-opted-out', 'has-work'],
    );
    for (const namespace of ['default', 'shop']) {
      for (const c of podCases()) {
        const pod = podObject(c, namespace);
        const env = { object: pod, oldObject: null, request: { namespace, operation: 'CREATE' } };
        const called = conditions.every((m) => evalCel(m.expression, env) === true);
        const decision = admit(reviewFor(pod, namespace), { readinessGateNamespaces: new Set(gated) });
        const changes = decision.outcome === 'patched';
        assert.equal(
          called,
          changes,
          `${JSON.stringify(c)} in ${namespace}, gated ${gated.join()}: ${decision.outcome}`,
        );
        checked++;
        if (!called) skipped++;
      }
    }
  }
  assert.equal(checked, 320);
  assert.ok(skipped > 50 && skipped < checked - 50, `both outcomes covered (${skipped} skipped)`);
  // Off: no matchConditions at all.
  const off = render({ webhook: { matchConditions: false } });
  const offHook = (find(off.objects, 'MutatingWebhookConfiguration') as unknown as { webhooks: Json[] })
    .webhooks[0]!;
  assert.equal(offHook.matchConditions, undefined);
});

test('MutatingAdmissionPolicy makes the same change to a pod as the webhook', () => {
  let compared = 0;
  for (const gated of [[], ['shop']]) {
    const { objects } = render(
      { mutatingAdmissionPolicy: { enabled: true }, webhook: { readinessGateNamespaces: gated } },
      MAP_BETA,
    );
    const policy = find(objects, 'MutatingAdmissionPolicy');
    const spec = policy.spec as {
      matchConditions: { expression: string }[];
      variables: { name: string; expression: string }[];
      mutations: {
        patchType: string;
        applyConfiguration?: { expression: string };
        jsonPatch?: { expression: string };
      }[];
      failurePolicy: string;
      reinvocationPolicy: string;
    };
    assert.equal(spec.failurePolicy, 'Ignore');
    assert.equal(spec.reinvocationPolicy, 'IfNeeded');
    for (const namespace of ['default', 'shop']) {
      for (const c of podCases()) {
        const pod = podObject(c, namespace);
        const base = { object: pod, oldObject: null, request: { namespace, operation: 'CREATE' } };
        const decision = admit(reviewFor(pod, namespace), { readinessGateNamespaces: new Set(gated) });
        const expected = structuredClone(pod);
        if (decision.review.response.patch !== undefined) {
          const ops = JSON.parse(
            Buffer.from(decision.review.response.patch, 'base64').toString(),
          ) as Operation[];
          fastJsonPatch.applyPatch(expected, ops);
        }
        let actual = structuredClone(pod);
        if (spec.matchConditions.every((m) => evalCel(m.expression, base) === true)) {
          const variables: Json = {};
          for (const v of spec.variables) variables[v.name] = evalCel(v.expression, { ...base, variables });
          for (const m of spec.mutations) {
            const env = { ...base, object: actual, variables };
            if (m.patchType === 'ApplyConfiguration') {
              const applied = evalCel(m.applyConfiguration?.expression ?? '', env) as Json;
              actual = applyConfiguration(actual, applied);
            } else {
              const ops = evalCel(m.jsonPatch?.expression ?? '', env) as Operation[];
              actual = fastJsonPatch.applyPatch(actual, ops, true, false).newDocument;
            }
          }
        }
        assert.deepEqual(actual, expected, `${JSON.stringify(c)} in ${namespace}, gated ${gated.join()}`);
        compared++;
      }
    }
  }
  assert.equal(compared, 320);
});

/** Server-side apply of maps (labels) as the policy uses it: maps merge, scalars replace. */
function applyConfiguration(target: Json, patch: Json): Json {
  const out: Json = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    const t = out[k];
    out[k] =
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      typeof t === 'object' &&
      t !== null &&
      !Array.isArray(t)
        ? applyConfiguration(t as Json, v as Json)
        : v;
  }
  return out;
}

test('MutatingAdmissionPolicy replaces the webhook, at the newest API version the cluster serves', () => {
  const { objects, notes } = render({ mutatingAdmissionPolicy: { enabled: true } }, MAP_BETA);
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
  // Same namespaces left out as for the webhook.
  const webhookSelector = get(
    (find(render().objects, 'MutatingWebhookConfiguration') as unknown as { webhooks: Json[] }).webhooks[0],
    'namespaceSelector',
  );
  assert.deepEqual(get(binding, 'spec.matchResources.namespaceSelector'), webhookSelector);
  assert.match(notes, /MutatingAdmissionPolicy \(admissionregistration\.k8s\.io\/v1beta1\)/);
  // GA where served; v1alpha1 on 1.32; a chosen version for helm template; a clear failure.
  const ga = render({ mutatingAdmissionPolicy: { enabled: true } }, [
    ...MAP_BETA,
    'admissionregistration.k8s.io/v1/MutatingAdmissionPolicy',
  ]);
  assert.equal(find(ga.objects, 'MutatingAdmissionPolicy').apiVersion, 'admissionregistration.k8s.io/v1');
  const alpha = render({ mutatingAdmissionPolicy: { enabled: true } }, [
    ...CLUSTER,
    'admissionregistration.k8s.io/v1alpha1/MutatingAdmissionPolicy',
  ]);
  assert.equal(
    find(alpha.objects, 'MutatingAdmissionPolicy').apiVersion,
    'admissionregistration.k8s.io/v1alpha1',
  );
  const chosen = render(
    { mutatingAdmissionPolicy: { enabled: true, apiVersion: 'admissionregistration.k8s.io/v1alpha1' } },
    CLUSTER,
  );
  assert.equal(
    find(chosen.objects, 'MutatingAdmissionPolicy').apiVersion,
    'admissionregistration.k8s.io/v1alpha1',
  );
  assert.throws(
    () => render({ mutatingAdmissionPolicy: { enabled: true } }, CLUSTER),
    /serves no MutatingAdmissionPolicy API/,
  );
});

test('ValidatingAdmissionPolicy lets the agent change only pods of the node in its token', () => {
  const { objects } = render({ nodeAgent: { serviceAccount: { name: 'agent-sa' } } }, CLUSTER, 'obs');
  const policy = find(objects, 'ValidatingAdmissionPolicy');
  const binding = find(objects, 'ValidatingAdmissionPolicyBinding');
  assert.equal(policy.apiVersion, 'admissionregistration.k8s.io/v1');
  assert.equal(get(binding, 'spec.policyName'), policy.metadata.name);
  assert.deepEqual(get(binding, 'spec.validationActions'), ['Deny']);
  assert.equal(find(objects, 'ServiceAccount', 'agent-sa').metadata.namespace, 'obs');
  const spec = policy.spec as {
    failurePolicy: string;
    matchConstraints: { resourceRules: Json[] };
    matchConditions: { expression: string }[];
    variables: { name: string; expression: string }[];
    validations: { expression: string; messageExpression: string; reason: string }[];
  };
  assert.equal(spec.failurePolicy, 'Fail');
  assert.deepEqual(spec.matchConstraints.resourceRules, [
    { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods', 'pods/status'] },
  ]);
  const agent = 'system:serviceaccount:obs:agent-sa';
  const nodeKey = 'authentication.kubernetes.io/node-name';
  const decide = (username: string, extra: Json | undefined, podNode: string | undefined) => {
    const pod = { metadata: { name: 'p' }, spec: podNode === undefined ? {} : { nodeName: podNode } };
    const userInfo: Json = { username };
    if (extra !== undefined) userInfo.extra = extra;
    const base = { object: pod, oldObject: pod, request: { userInfo, operation: 'UPDATE' } };
    if (!spec.matchConditions.every((m) => evalCel(m.expression, base) === true)) return 'not matched';
    const variables: Json = {};
    for (const v of spec.variables) variables[v.name] = evalCel(v.expression, { ...base, variables });
    const failed = spec.validations.find((v) => evalCel(v.expression, { ...base, variables }) !== true);
    return failed === undefined
      ? 'allowed'
      : `denied: ${String(evalCel(failed.messageExpression, { ...base, variables }))}`;
  };
  assert.equal(decide(agent, { [nodeKey]: ['node-a'] }, 'node-a'), 'allowed');
  assert.match(
    decide(agent, { [nodeKey]: ['node-a'] }, 'node-b'),
    /^denied: .*"node-a" may only change pods bound/,
  );
  assert.match(decide(agent, { [nodeKey]: ['node-a'] }, undefined), /^denied/);
  assert.match(decide(agent, {}, 'node-a'), /^denied/, 'a token without the node claim');
  assert.match(decide(agent, { [nodeKey]: [] }, 'node-a'), /^denied/);
  assert.match(decide(agent, undefined, 'node-a'), /^denied/);
  assert.equal(decide('system:serviceaccount:obs:other', { [nodeKey]: ['node-a'] }, 'node-b'), 'not matched');
  assert.equal(decide('kubernetes-admin', undefined, 'node-b'), 'not matched');
});

test('the node policy switch: auto follows the cluster, true forces it, false removes it', () => {
  const kinds = (values: Values, apis: string[]) =>
    render(values, apis).objects.filter((o) => o.kind.startsWith('ValidatingAdmissionPolicy')).length;
  assert.equal(kinds({}, CLUSTER), 2);
  assert.equal(kinds({}, OLD_CLUSTER), 0);
  assert.equal(kinds({ nodeAgent: { sameNodePolicy: { enabled: true } } }, OLD_CLUSTER), 2);
  assert.equal(kinds({ nodeAgent: { sameNodePolicy: { enabled: false } } }, CLUSTER), 0);
  assert.match(render({}, OLD_CLUSTER).notes, /NOTE: the ValidatingAdmissionPolicy .* is not\s+installed/);
});

// ---------------------------------------------------------------------------------------------

test('RBAC: the agent gets exactly the verbs it needs; the webhook gets none', () => {
  const { objects } = render();
  const role = find(objects, 'ClusterRole');
  assert.deepEqual(role.rules, [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch'] },
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

test('webhook Deployment: 2 replicas, spread, probes, resources, locked-down security context', () => {
  const { objects } = render();
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
  const hard = podSpec(find(render({ webhook: { podAntiAffinity: 'hard' } }).objects, 'Deployment'));
  assert.ok(
    get(hard, 'affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution') !== undefined,
  );
  const none = podSpec(find(render({ webhook: { podAntiAffinity: 'none' } }).objects, 'Deployment'));
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

test('the webhook container configuration is what the webhook binary accepts', () => {
  const parse = (values: Values) => {
    const env = envOf(container(find(render(values).objects, 'Deployment')));
    const cmd = webhookCommand().exitOverride();
    cmd.parse(argsFromEnv(cmd, env), { from: 'user' });
    return webhookConfig(cmd.opts<Parameters<typeof webhookConfig>[0]>());
  };
  const byDefault = parse({});
  assert.deepEqual(byDefault.readinessGateNamespaces, [], 'no namespace gated by default');
  assert.equal(byDefault.certReloadIntervalMs, 10_000);
  assert.equal(byDefault.logLevel, 'info');
  const { objects } = render({
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
  assert.deepEqual(config.listen, { host: '0.0.0.0', port: 9443 });
  assert.deepEqual(config.metricsListen, { host: '0.0.0.0', port: 9090 });
  assert.deepEqual(config.readinessGateNamespaces, ['shop', 'ci']);
  assert.equal(config.certReloadIntervalMs, 90_000);
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.tlsCert, '/etc/pulltrace/tls/tls.crt');
});

test('node agent DaemonSet: node name, every node, metrics, probes, tight security context', () => {
  const { objects } = render();
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
    find(render({ nodeAgent: { containerd: { socketGroup: 1001 } } }).objects, 'DaemonSet'),
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
      render({ nodeAgent: { priorityClassName: 'system-node-critical' } }).objects.find(
        (o) => o.kind === 'DaemonSet',
      ),
      'spec.template.spec.priorityClassName',
    ),
    'system-node-critical',
  );
});

test('the containerd socket is mounted from the configured host path (k3s/RKE2 too)', () => {
  const k3s = '/run/k3s/containerd/containerd.sock';
  for (const [mount, hostPath, type] of [
    ['directory', '/run/k3s/containerd', 'Directory'],
    ['socket', k3s, 'Socket'],
  ] as const) {
    const ds = find(render({ nodeAgent: { containerd: { socketPath: k3s, mount } } }).objects, 'DaemonSet');
    const volumes = podSpec(ds).volumes as { name: string; hostPath?: { path: string; type: string } }[];
    assert.deepEqual(volumes, [{ name: 'containerd', hostPath: { path: hostPath, type } }]);
    const c = container(ds);
    assert.deepEqual(c.volumeMounts, [{ name: 'containerd', mountPath: hostPath, readOnly: true }]);
    assert.equal(envOf(c).get('PULLTRACE_CONTAINERD_ADDRESS'), k3s);
    assert.ok(k3s === hostPath || k3s.startsWith(`${hostPath}/`), 'the socket is inside the mount');
  }
});

test('the node agent configuration is what the node-agent binary accepts (large numbers too)', () => {
  const { objects } = render({
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
  assert.equal(config.slowRate, 2_000_000, 'not printed as 2e+06');
  assert.equal(config.apiQps, 20);
  assert.equal(config.maxWritesPerPull, 40);
  assert.equal(config.pollIntervalMs, 500);
  assert.equal(config.stallAfterMs, 60_000);
  assert.equal(config.containerdAddress, '/run/k0s/containerd.sock');
  assert.equal(config.snapshotter, 'native');
  assert.equal(config.kubeconfig, '', 'in-cluster configuration');
  assert.deepEqual(config.metricsListen, { host: '0.0.0.0', port: 9091 });
});

test('scrape annotations follow the metrics ports', () => {
  const { objects } = render({ webhook: { metricsPort: 9191 }, nodeAgent: { metricsPort: 9292 } });
  const ann = (kind: string) => get(find(objects, kind), 'spec.template.metadata.annotations') as Json;
  assert.equal(ann('Deployment')['prometheus.io/port'], '9191');
  assert.equal(ann('DaemonSet')['prometheus.io/port'], '9292');
  assert.equal(
    get(
      find(render({ metrics: { scrapeAnnotations: false } }).objects, 'DaemonSet'),
      'spec.template.metadata.annotations',
    ),
    undefined,
  );
});
