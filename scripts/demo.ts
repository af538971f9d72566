// `npm run demo`: pulltrace's main job on a fresh machine, as far as it has landed. Today: make
// a CA and serving certificate with certs/make-certs.sh, start the real webhook over HTTPS,
// send it a pod CREATE AdmissionReview the way the API server does (verifying the server
// against the CA bundle), and show the pod before and after the returned JSONPatch.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsonpatch, { type Operation } from 'fast-json-patch';
import { freePort, waitFor } from '../common/net.js';

const root = fileURLToPath(new URL('..', import.meta.url));

function post(
  port: number,
  ca: Buffer,
  body: string,
  path = '/mutate',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: path === '/mutate' ? 'POST' : 'GET',
        ca,
        servername: 'pulltrace-webhook.pulltrace.svc',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: text });
        });
      },
    );
    req.on('error', reject);
    req.end(path === '/mutate' ? body : undefined);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'pulltrace-demo-'));
const child = { proc: null as ReturnType<typeof spawn> | null };
try {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    console.log('0. installing what the demo needs (e2e/env/install.sh: openssl, containerd, registry)');
    execFileSync('bash', [join(root, 'e2e/env/install.sh')], { stdio: 'inherit' });
  }
  console.log('1. certificate for pulltrace-webhook.pulltrace.svc (certs/make-certs.sh)');
  execFileSync('bash', [join(root, 'certs/make-certs.sh'), '--out', dir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const ca = readFileSync(join(dir, 'ca.crt'));

  const port = await freePort();
  const metrics = await freePort();
  console.log(`2. webhook on https://127.0.0.1:${port}`);
  child.proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'webhook/main.ts'),
      '--listen',
      `127.0.0.1:${port}`,
      '--metrics-listen',
      `127.0.0.1:${metrics}`,
      '--tls-cert',
      join(dir, 'tls.crt'),
      '--tls-key',
      join(dir, 'tls.key'),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  await waitFor('the webhook', async () => (await post(port, ca, '', '/readyz')).status === 200, 20_000);

  const review = JSON.parse(readFileSync(join(root, 'webhook/testdata/pod-create.json'), 'utf8')) as {
    request: { object: { metadata: { annotations?: Record<string, string> } } };
  };
  // Opt in to the readiness gate, as a user would with an annotation.
  review.request.object.metadata.annotations = {
    ...review.request.object.metadata.annotations,
    'pulltrace.io/readiness-gate': 'true',
  };
  const pod = review.request.object;
  console.log('3. pod as submitted:');
  console.log(JSON.stringify(pick(pod), null, 2));

  const res = await post(port, ca, JSON.stringify(review));
  const answer = JSON.parse(res.body) as {
    response: { allowed: boolean; patch?: string; patchType?: string };
  };
  const patch = JSON.parse(Buffer.from(answer.response.patch ?? 'W10=', 'base64').toString()) as Operation[];
  console.log(
    `4. webhook answered HTTP ${res.status}, allowed=${answer.response.allowed}, ${answer.response.patchType ?? 'no patch'}:`,
  );
  console.log(JSON.stringify(patch, null, 2));
  const mutated = jsonpatch.applyPatch(structuredClone(pod), patch, true, false).newDocument;
  console.log('5. pod as stored by the API server:');
  console.log(JSON.stringify(pick(mutated), null, 2));
  console.log('\nThe node agent now tracks this pod (label pulltrace.io/tracked) and, because of the');
  console.log('readiness gate, the pod turns Ready only once pulltrace.io/ImagesPulled is True.');
} finally {
  child.proc?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

function pick(p: unknown): unknown {
  const o = p as {
    metadata?: { name?: string; labels?: unknown; annotations?: unknown };
    spec?: { readinessGates?: unknown };
  };
  return {
    metadata: {
      name: o.metadata?.name,
      labels: o.metadata?.labels ?? null,
      annotations: o.metadata?.annotations ?? null,
    },
    spec: { readinessGates: o.spec?.readinessGates ?? null },
  };
}
