// Shared by the webhook's tests: fixtures, patch decoding, certificates from certs/.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import type { AdmissionReviewResponse, JsonObject } from '../webhook/mutate.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const MAKE_CERTS = join(here, '..', 'certs', 'make-certs.sh');

/** A fresh copy of a fixture from webhook/testdata/. */
export function fixture(name: string): JsonObject {
  return JSON.parse(readFileSync(join(here, '..', 'webhook', 'testdata', name), 'utf8')) as JsonObject;
}

/** The Pod review fixture with the pod replaced by `edit(pod)`'s changes. */
export function podReview(edit: (pod: JsonObject, request: JsonObject) => void = () => {}): JsonObject {
  const review = fixture('pod-create.json');
  const request = review.request as JsonObject;
  edit(request.object as JsonObject, request);
  return review;
}

export function decodePatch(review: AdmissionReviewResponse): Operation[] | null {
  const p = review.response.patch;
  return p === undefined ? null : (JSON.parse(Buffer.from(p, 'base64').toString('utf8')) as Operation[]);
}

/** Applies the patch the way the API server does: validated, to the object it sent. */
export function applyAsApiServer(object: JsonObject, ops: Operation[]): JsonObject {
  return fastJsonPatch.applyPatch(structuredClone(object), ops, true, false).newDocument;
}

export interface CertDir {
  dir: string;
  caBundle: string;
  ca: Buffer;
  cert: string;
  key: string;
  /** Issues a new serving certificate from the same CA into the same files. */
  rotate(): void;
  cleanup(): void;
}

export function makeCerts(): CertDir {
  const dir = mkdtempSync(join(tmpdir(), 'pt-certs-'));
  const run = (extra: string[]) =>
    execFileSync(
      'bash',
      [MAKE_CERTS, '--out', dir, '--san', 'IP:127.0.0.1', '--san', 'DNS:localhost', ...extra],
      {
        encoding: 'utf8',
      },
    ).trim();
  const caBundle = run([]);
  return {
    dir,
    caBundle,
    ca: readFileSync(join(dir, 'ca.crt')),
    cert: join(dir, 'tls.crt'),
    key: join(dir, 'tls.key'),
    rotate: () => {
      run(['--ca-dir', dir]);
    },
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
