// The pod watch's failures as a user meets them: a kubeconfig the client refuses, credentials
// and RBAC refused, an unreachable API server — each said once, with what to do, and /readyz
// failing — through the real Kubernetes client against a loopback address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { createLogger } from '../common/logging.js';
import { watchNodePods } from './publisher/kube-writer.js';
import { explainKubeError, PodWatchRunner } from './pod-watch.js';

function kubeconfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: false }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

test('a plain http:// kubeconfig (as kubectl proxy gives): one clear log line with the fix, /readyz fails, retried with back-off', async () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('test', 'debug', {
    write: (l: string) => {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  });
  const failures: unknown[] = [];
  const watch = watchNodePods(kubeconfig('http://127.0.0.1:9'), 'node-a', {
    onListed: () => {
      runner.ok();
    },
    onPod: () => undefined,
    onDelete: () => undefined,
    onError: (err) => {
      failures.push(err);
      runner.failed(err);
    },
  });
  const runner: PodWatchRunner = new PodWatchRunner({
    start: () => watch.start(),
    log,
    backoff: { baseMs: 5, maxMs: 20 },
  });
  runner.start();
  const deadline = Date.now() + 10_000;
  while (failures.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  runner.stop();
  await watch.stop();
  assert.ok(failures.length >= 5, `retried (${failures.length} tries)`);
  const warned = lines.filter((l) => l.level === 'warn');
  assert.equal(warned.length, 1, 'said once, not once per try');
  assert.match(String(warned[0]?.msg), /plain http:\/\/ server, which the Kubernetes client refuses/);
  assert.match(String(warned[0]?.hint), /insecure-skip-tls-verify: true/);
  assert.equal(
    lines.filter((l) => typeof l.stack === 'string' || typeof l.err === 'object').length,
    0,
    'no stack trace',
  );
  assert.match(runner.notReady() ?? '', /^pod watch: the kubeconfig points at a plain http:\/\//);
  // A list that works clears it.
  runner.ok();
  assert.equal(runner.notReady(), null);
});

test('401, 403 and an unreachable API server are explained; 401/403 say what to check', () => {
  const e401 = explainKubeError(new ApiException(401, 'Unauthorized', '', {}));
  assert.match(e401.message, /refused the credentials \(HTTP 401\)/);
  assert.match(e401.hint ?? '', /token/);
  const e403 = explainKubeError(new ApiException(403, 'Forbidden', '', {}));
  assert.match(e403.message, /RBAC forbids/);
  assert.match(e403.hint ?? '', /ClusterRole pulltrace-node-agent/);
  const down = explainKubeError(new Error('connect ECONNREFUSED 127.0.0.1:6443'));
  assert.match(down.message, /unreachable/);
  assert.equal(down.hint, null, 'transient: no action');
});
