// Webhook throughput and latency over TLS against a ceiling: a bare node:https server that
// answers a canned AdmissionResponse, measured in the same run on the same machine.
//
// Two cases: as fast as each server answers (16 connections), and a fixed 1 000 req/s (10
// connections). Both servers run at once (each in its own process, idle while the other is
// loaded) and each case alternates between them in rounds (W C, C W, W C), so a burst of other
// work on a shared machine falls on both sides rather than on one phase: the ratios reported
// are medians of the rounds' ratios. Each phase also reports the server's CPU time per request
// (user + system, from /proc), which separates the server's own cost from the load
// generator's.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { makeCerts, podReview } from '../test-support/webhook.js';
import type { JsonObject } from '../webhook/mutate.js';

const SERVER = fileURLToPath(new URL('./webhook-server.ts', import.meta.url));
/** Seconds of each measured phase. */
const DURATION_S = Number(process.env.BENCH_DURATION ?? '5');
/** Rounds per case; each loads the webhook once and the ceiling once. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '3');

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

type Kind = 'webhook' | 'ceiling';

interface Server {
  kind: Kind;
  port: number;
  child: ChildProcess;
}

async function startServer(kind: Kind, cert: string, key: string): Promise<Server> {
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
  return { kind, port, child };
}

/** CPU seconds (user + system) the process has used, or NaN where /proc is not available. */
function cpuSeconds(pid: number | undefined): number {
  try {
    // Fields after the command name: state is field 3, utime 14 and stime 15 (in clock ticks,
    // 100 a second on Linux).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Server CPU time per answered request, µs. */
  cpuUs: number;
}

async function load(server: Server, body: string, seconds: number, overallRate?: number): Promise<Figures> {
  const cpuBefore = cpuSeconds(server.child.pid);
  const r = await autocannon({
    url: `https://127.0.0.1:${server.port}/mutate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: overallRate === undefined ? 16 : 10,
    pipelining: 1,
    duration: seconds,
    ...(overallRate === undefined ? {} : { overallRate }),
  });
  const cpu = cpuSeconds(server.child.pid) - cpuBefore;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
    cpuUs: (cpu * 1e6) / Math.max(r.requests.total, 1),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function row(name: string, f: Figures): string {
  return `${name.padEnd(22)} ${f.rps.toFixed(0).padStart(7)} ${f.p50.toFixed(2).padStart(7)} ${f.p99.toFixed(2).padStart(7)} ${f.cpuUs.toFixed(1).padStart(11)} ${String(f.errors).padStart(7)} ${String(f.non2xx).padStart(8)}`;
}

interface Round {
  webhook: Figures;
  ceiling: Figures;
}

/**
 * ROUNDS rounds, each loading the webhook and the ceiling once for DURATION_S seconds (at
 * `rate` req/s, or as fast as they answer); prints a row per phase.
 */
async function rounds(
  webhook: Server,
  ceiling: Server,
  body: string,
  label: string,
  rate?: number,
): Promise<Round[]> {
  const out: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which side goes first so a trend in the machine's load favours neither.
    const order = i % 2 === 0 ? [webhook, ceiling] : [ceiling, webhook];
    const got = new Map<Kind, Figures>();
    for (const server of order) got.set(server.kind, await load(server, body, DURATION_S, rate));
    const w = got.get('webhook');
    const c = got.get('ceiling');
    if (w === undefined || c === undefined) throw new Error('a round lost a phase');
    out.push({ webhook: w, ceiling: c });
    console.log(row(`webhook, ${label} (${i + 1})`, w));
    console.log(row(`ceiling, ${label} (${i + 1})`, c));
  }
  return out;
}

function summary(name: string, rs: Round[], ratio: (r: Round) => number, unit: string, target: string): void {
  const of = (side: keyof Round, k: keyof Figures) =>
    median(rs.map((r) => r[side][k])).toFixed(k === 'rps' ? 0 : 1);
  const ratios = rs.map(ratio);
  console.log(
    `${name}: webhook ${of('webhook', 'rps')} req/s, p99 ${of('webhook', 'p99')} ms, ${of('webhook', 'cpuUs')} cpu µs/req; ` +
      `ceiling ${of('ceiling', 'rps')} req/s, p99 ${of('ceiling', 'p99')} ms, ${of('ceiling', 'cpuUs')} cpu µs/req (medians of rounds)`,
  );
  console.log(
    `  ratio webhook/ceiling: ${unit === '%' ? (median(ratios) * 100).toFixed(1) : median(ratios).toFixed(2)}${unit} median of rounds ` +
      `(${ratios.map((r) => (unit === '%' ? (r * 100).toFixed(1) : r.toFixed(2))).join(', ')}) (target ${target})`,
  );
}

export async function run(): Promise<void> {
  const certs = makeCerts();
  const servers: Server[] = [];
  try {
    const body = JSON.stringify(realisticReview());
    console.log(
      `AdmissionReview body: ${Buffer.byteLength(body)} bytes; ${ROUNDS} rounds of ${DURATION_S} s per server and case; 127.0.0.1 over TLS`,
    );
    const webhook = await startServer('webhook', certs.cert, certs.key);
    servers.push(webhook);
    const ceiling = await startServer('ceiling', certs.cert, certs.key);
    servers.push(ceiling);
    // Warm-up: JIT, TLS sessions, heap sizes.
    await load(webhook, body, DURATION_S);
    await load(ceiling, body, DURATION_S);

    console.log('case                     req/s  p50 ms  p99 ms  cpu µs/req  errors  non-2xx');
    const max = await rounds(webhook, ceiling, body, 'max');
    const fixed = await rounds(webhook, ceiling, body, '1000/s', 1000);
    summary('max', max, (r) => r.webhook.rps / r.ceiling.rps, '%', '>= 50 %');
    // autocannon reports whole milliseconds; a ceiling p99 of 0 ms counts as 1 ms.
    summary('1000 req/s', fixed, (r) => r.webhook.p99 / Math.max(r.ceiling.p99, 1), 'x', '<= 1.5x p99');
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
    certs.cleanup();
  }
}
