// The webhook over real TLS, with certificates made by certs/make-certs.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type Server } from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { silentLogger } from '../common/logging.js';
import { buildApp } from './app.js';
import { createWebhookMetrics } from './metrics.js';
import { CertWatcher, readKeyPair } from './tls.js';
import { makeCerts, podReview } from '../test-support/webhook.js';

interface Answer {
  status: number;
  body: string;
  serial: string;
}

/** POSTs `body` over a fresh TLS connection; `hold` delays the last byte until it resolves. */
function post(
  port: number,
  ca: Buffer,
  body: string,
  hold?: Promise<void>,
  minVersion?: 'TLSv1' | 'TLSv1.1',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/mutate',
        ca,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        // An old client as old clients are: TLS 1.1 at most, and OpenSSL's security level 0 so
        // the client itself does not refuse TLS < 1.2 (OpenSSL 3 does at level 1 and above).
        ...(minVersion === undefined
          ? {}
          : { minVersion, maxVersion: minVersion, ciphers: 'DEFAULT@SECLEVEL=0' }),
      },
      (res) => {
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, serial }));
      },
    );
    req.on('error', reject);
    if (hold === undefined) {
      req.end(body);
      return;
    }
    req.write(body.slice(0, -1));
    hold.then(() => req.end(body.slice(-1)), reject);
  });
}

test("the TLS 1.1 test client can connect where TLS 1.1 is allowed, so a refusal is the webhook's own floor", async (t) => {
  const certs = makeCerts();
  t.after(() => certs.cleanup());
  const pair = await readKeyPair(certs.cert, certs.key);
  const control = createHttpsServer(
    { cert: pair.cert, key: pair.key, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
    (_req, res) => res.end('ok'),
  );
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
  t.after(() => control.close());
  const answer = await post((control.address() as AddressInfo).port, certs.ca, '{}', undefined, 'TLSv1.1');
  assert.equal(answer.status, 200);
});

test('serves admission over TLS 1.2+ and swaps a rotated certificate without dropping requests', async (t) => {
  // Servers in this test accept what OpenSSL's security level would otherwise refuse by itself
  // (TLS < 1.2 at level ≥ 1): only the webhook's own minVersion stands between TLS 1.1 and it.
  const ciphers = tls.DEFAULT_CIPHERS;
  tls.DEFAULT_CIPHERS = `${ciphers}:@SECLEVEL=0`;
  t.after(() => {
    tls.DEFAULT_CIPHERS = ciphers;
  });
  const certs = makeCerts();
  t.after(() => certs.cleanup());
  const logger = silentLogger();
  const pair = await readKeyPair(certs.cert, certs.key);
  const app = buildApp({
    logger,
    metrics: createWebhookMetrics({ processMetrics: false }),
    mutate: { readinessGateNamespaces: new Set() },
    tls: pair,
  });
  const watcher = new CertWatcher(pair, {
    certPath: certs.cert,
    keyPath: certs.key,
    reloadIntervalMs: 60_000,
    logger,
    onChange: (next) => (app.server as Server).setSecureContext({ cert: next.cert, key: next.key }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const port = (app.server.address() as AddressInfo).port;
  const body = JSON.stringify(podReview());

  const first = await post(port, certs.ca, body);
  assert.equal(first.status, 200);
  assert.match(first.body, /"patchType":"JSONPatch"/);

  await assert.rejects(
    post(port, certs.ca, body, undefined, 'TLSv1.1'),
    // The server's protocol_version alert, received by the client: the server refused.
    /alert protocol version/i,
    'TLS 1.1 refused by the webhook',
  );

  // A request in flight on the old certificate while the files rotate.
  let release = () => {};
  const held = new Promise<void>((r) => (release = r));
  const inFlight = post(port, certs.ca, body, held);
  certs.rotate();
  assert.equal(await watcher.check(), true, 'the new pair is swapped in');
  const afterRotation = await post(port, certs.ca, body);
  assert.equal(afterRotation.status, 200);
  assert.notEqual(afterRotation.serial, first.serial, 'new connections get the new certificate');
  release();
  const old = await inFlight;
  assert.equal(old.status, 200, 'the in-flight request completed');
  assert.equal(old.serial, first.serial, 'on the certificate it started with');
  assert.equal(await watcher.check(), false, 'unchanged files are not reloaded');

  // A half-written rotation (key of another pair) is refused; the good certificate stays.
  const other = makeCerts();
  t.after(() => other.cleanup());
  writeFileSync(certs.key, (await readKeyPair(other.cert, other.key)).key);
  assert.equal(await watcher.check(), false);
  assert.equal(watcher.failures, 1);
  const still = await post(port, certs.ca, body);
  assert.equal(still.status, 200);
  assert.equal(still.serial, afterRotation.serial);
});

test('readKeyPair says which files failed', async () => {
  await assert.rejects(readKeyPair('/nonexistent/tls.crt', '/nonexistent/tls.key'), (e: Error) => {
    assert.match(e.message, /cannot load TLS certificate or key: \/nonexistent\/tls.crt/);
    return true;
  });
});
