// Webhook throughput and latency over TLS against a ceiling: a bare node:https server that
// answers a canned AdmissionResponse, measured in the same run on the same machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { makeCerts, podReview } from '../webhook/test-helpers.js';
import type { JsonObject } from '../webhook/mutate.js';

const SERVER = fileURLToPath(new URL('./webhook-server.ts', import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION ?? '10');

/** A realistic ~10 KB pod: three containers with env, probes, mounts, annotations. */
export function realisticReview(): JsonObject {
  return podReview((pod) => {
    const meta = pod.metadata as JsonObject;
    meta.annotations = {
      'kubectl.kubernetes.io/restartedAt': '2026-11-25T03:00:00Z',
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '9102',
    };
    const container = (name: string, image: string) => ({
      name,
      image,
      imagePullPolicy: 'IfNotPresent',
      args: ['--config=/etc/app/config.yaml', '--log-format=json', '--port=8080'],
      env: Array.from({ length: 22 }, (_, i) => ({
        name: `APP_SETTING_${i}`,
        value: `value-${i}-${'x'.repeat(24)}`,
      })),
      ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }],
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
      readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
      livenessProbe: { httpGet: { path: '/live', port: 8080 }, periodSeconds: 10 },
      volumeMounts: [
        { name: 'config', mountPath: '/etc/app' },
        {
          name: 'kube-api-access',
          mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
          readOnly: true,
        },
      ],
      securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false },
    });
    const spec = pod.spec as JsonObject;
    spec.initContainers = [container('migrate', 'registry.test/team/migrate:1.4.2')];
    spec.containers = [
      container('web', 'registry.test/team/web:1.4.2'),
      container('sidecar', 'registry.test/proxy:2.1'),
    ];
    spec.volumes = [
      { name: 'config', configMap: { name: 'web-config' } },
      {
        name: 'kube-api-access',
        projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] },
      },
    ];
  });
}

async function startServer(
  kind: 'webhook' | 'ceiling',
  cert: string,
  key: string,
): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, kind, cert, key], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /^PORT=(\d+)$/m.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return { port, child };
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(port: number, body: string, overallRate?: number): Promise<Figures> {
  const r = await autocannon({
    url: `https://127.0.0.1:${port}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: overallRate === undefined ? 16 : 10,
    pipelining: 1,
    duration: DURATION_S,
    ...(overallRate === undefined ? {} : { overallRate }),
  });
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

async function measure(
  kind: 'webhook' | 'ceiling',
  cert: string,
  key: string,
  body: string,
  rate?: number,
): Promise<Figures> {
  const { port, child } = await startServer(kind, cert, key);
  try {
    await load(port, body, rate); // warm-up: JIT, TLS session setup
    return await load(port, body, rate);
  } finally {
    child.kill('SIGTERM');
  }
}

export async function run(): Promise<void> {
  const certs = makeCerts();
  try {
    const body = JSON.stringify(realisticReview());
    console.log(
      `AdmissionReview body: ${Buffer.byteLength(body)} bytes; ${DURATION_S} s per phase; 127.0.0.1 over TLS`,
    );
    const rows: [string, Figures][] = [];
    const max = {
      webhook: await measure('webhook', certs.cert, certs.key, body),
      ceiling: await measure('ceiling', certs.cert, certs.key, body),
    };
    rows.push(['webhook, max', max.webhook], ['ceiling, max', max.ceiling]);
    const fixed = {
      webhook: await measure('webhook', certs.cert, certs.key, body, 1000),
      ceiling: await measure('ceiling', certs.cert, certs.key, body, 1000),
    };
    rows.push(['webhook, 1000 req/s', fixed.webhook], ['ceiling, 1000 req/s', fixed.ceiling]);
    console.log('case                    req/s     p50 ms  p99 ms  errors  non-2xx');
    for (const [name, f] of rows) {
      console.log(
        `${name.padEnd(22)} ${f.rps.toFixed(0).padStart(7)} ${f.p50.toFixed(2).padStart(9)} ${f.p99.toFixed(2).padStart(7)} ${String(f.errors).padStart(7)} ${String(f.non2xx).padStart(8)}`,
      );
    }
    const throughput = max.webhook.rps / max.ceiling.rps;
    const p99Ratio = fixed.webhook.p99 / Math.max(fixed.ceiling.p99, 0.001);
    console.log(`throughput ratio webhook/ceiling: ${(throughput * 100).toFixed(1)} % (target >= 50 %)`);
    console.log(`p99 ratio at 1000 req/s webhook/ceiling: ${p99Ratio.toFixed(2)}x (target <= 1.5x)`);
  } finally {
    certs.cleanup();
  }
}
