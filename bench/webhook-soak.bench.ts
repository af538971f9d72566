// Webhook under sustained load (issue 7): 60 s at a fixed 1 000 req/s of a realistic pod
// AdmissionReview over TLS, against the real app in its own process. Reports p50/p99, errors
// and the server's memory over time: flat memory means RSS in the last 10 s within a few
// percent of the first 10 s after warm-up (baseline and figure from the same run).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { makeCerts } from '../test-support/webhook.js';
import { realisticReview } from './webhook.bench.js';

const SERVER = new URL('./webhook-server.ts', import.meta.url).pathname;
const SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 60);
const RATE = 1000;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m?.[1] === undefined ? NaN : Number(m[1]) / 1024;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export async function run(): Promise<void> {
  const certs = makeCerts();
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, 'webhook', certs.cert, certs.key], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /^PORT=(\d+)$/m.exec(out);
        if (m !== null) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`webhook server exited with ${code}`)));
    });
    const pid = child.pid ?? 0;
    const body = JSON.stringify(realisticReview());
    const opts = {
      url: `https://127.0.0.1:${port}/mutate`,
      method: 'POST' as const,
      headers: { 'content-type': 'application/json' },
      body,
      connections: 10,
      tlsOptions: { rejectUnauthorized: false },
    };
    await autocannon({ ...opts, duration: 10 }); // warm-up
    const rss: number[] = [];
    const sampler = setInterval(() => rss.push(rssMb(pid)), 1000);
    const r = await autocannon({ ...opts, duration: SECONDS, overallRate: RATE });
    clearInterval(sampler);
    const first = mean(rss.slice(0, 10));
    const last = mean(rss.slice(-10));
    console.log(
      `${SECONDS} s at ${RATE} req/s, ${(body.length / 1024).toFixed(1)} KB review, 10 connections`,
    );
    console.log(
      `requests ${r.requests.total}  mean ${r.requests.average.toFixed(0)} req/s  ` +
        `p50 ${r.latency.p50} ms  p99 ${r.latency.p99} ms  max ${r.latency.max} ms`,
    );
    console.log(`errors ${r.errors}  timeouts ${r.timeouts}  non-2xx ${r.non2xx}`);
    console.log(
      `server RSS: first 10 s ${first.toFixed(1)} MB, last 10 s ${last.toFixed(1)} MB ` +
        `(ratio ${(last / first).toFixed(3)}), max ${Math.max(...rss).toFixed(1)} MB`,
    );
  } finally {
    child.kill('SIGTERM');
    certs.cleanup();
  }
}
