// How a failed API write is classified and said: the API server's own message, not the
// client's wrapper text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException } from '@kubernetes/client-node';
import { classify, statusMessage } from './kube-writer.js';

const status = (code: number, message: string) =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code });

test('a 403 and a policy 422 are fatal and say the API server’s message; 404, 409, 429 and 5xx are not', () => {
  const rbac =
    'pods "web-0" is forbidden: User "system:serviceaccount:pulltrace:agent" cannot patch resource "pods/status"';
  const c403 = classify(new ApiException(403, 'Unknown API Status Code!', status(403, rbac), {}));
  assert.deepEqual(c403, { kind: 'fatal', message: `HTTP 403: ${rbac}` });
  const vap = `pods "web-0" is forbidden: ValidatingAdmissionPolicy 'pulltrace-same-node' denied request: ${'x'.repeat(300)}the end`;
  const c422 = classify(new ApiException(422, 'Unknown API Status Code!', status(422, vap), {}));
  assert.equal(c422.kind, 'fatal');
  assert.match(JSON.stringify(c422), /the end"/, 'the message is not cut before its end');
  assert.deepEqual(classify(new ApiException(404, 'x', status(404, 'gone'), {})), { kind: 'gone' });
  assert.equal(classify(new ApiException(409, 'x', status(409, 'conflict'), {})).kind, 'retry');
  const c429 = classify(new ApiException(429, 'x', status(429, 'slow down'), { 'retry-after': '3' }));
  assert.deepEqual(c429, { kind: 'retry', afterMs: 3000, message: 'HTTP 429: slow down', retryAfter: true });
  assert.equal(classify(new ApiException(503, 'x', 'not json', {})).kind, 'retry');
  assert.equal(statusMessage(new ApiException(500, 'x', 'not json', {})), null);
  assert.equal(
    statusMessage(new ApiException(500, 'x', { message: 'an object body' }, {})),
    'an object body',
  );
});
