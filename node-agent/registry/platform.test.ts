// Platform parsing, normalisation and the index-entry choice, against containerd's default
// matcher (github.com/containerd/platforms: Normalize, platformVector, Ordered).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  choosePlatformEntry,
  compatiblePlatforms,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  type Platform,
} from './platform.js';

const P = (s: string): Platform => {
  const p = parsePlatform(s);
  assert.ok(p !== null, s);
  return p;
};

test('normalises architecture aliases and variants as containerd does', () => {
  const cases: [string, string][] = [
    ['linux/amd64', 'linux/amd64'],
    ['Linux/X86_64', 'linux/amd64'],
    ['linux/x86-64/v1', 'linux/amd64'],
    ['linux/amd64/v3', 'linux/amd64/v3'],
    ['linux/i386', 'linux/386'],
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm64/8', 'linux/arm64'],
    ['linux/arm64/v8.0', 'linux/arm64'],
    ['linux/arm64/9', 'linux/arm64/v9'],
    ['linux/arm64/v8.2', 'linux/arm64/v8.2'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['macos/arm64', 'darwin/arm64'],
    ['linux/s390x', 'linux/s390x'],
  ];
  for (const [input, want] of cases) assert.equal(formatPlatform(P(input)), want, input);
});

test('refuses what is not os/arch[/variant], without throwing', () => {
  for (const bad of ['', 'amd64', 'linux/', '/amd64', 'linux/amd64/v1/x', 'linux/am d64', 'x'.repeat(200)]) {
    assert.equal(parsePlatform(bad), null, bad);
  }
  assert.equal(parsePlatform(undefined as unknown as string), null);
});

test('lists the platforms a node can run, best first (containerd platformVector)', () => {
  const cases: [string, string[]][] = [
    ['linux/amd64', ['linux/amd64', 'linux/386']],
    ['linux/amd64/v3', ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386']],
    ['linux/arm/v7', ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    ['linux/arm/v5', ['linux/arm/v5']],
    ['linux/arm64', ['linux/arm64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']],
    [
      'linux/arm64/v8.2',
      [
        'linux/arm64/v8.2',
        'linux/arm64/v8.1',
        'linux/arm64',
        'linux/arm/v8',
        'linux/arm/v7',
        'linux/arm/v6',
        'linux/arm/v5',
      ],
    ],
    [
      'linux/arm64/v9',
      [
        'linux/arm64/v9',
        'linux/arm64/v8.5',
        'linux/arm64/v8.4',
        'linux/arm64/v8.3',
        'linux/arm64/v8.2',
        'linux/arm64/v8.1',
        'linux/arm64',
        'linux/arm/v8',
        'linux/arm/v7',
        'linux/arm/v6',
        'linux/arm/v5',
      ],
    ],
    ['linux/s390x', ['linux/s390x']],
  ];
  for (const [input, want] of cases)
    assert.deepEqual(compatiblePlatforms(P(input)).map(formatPlatform), want, input);
});

test('chooses the index entry containerd pulls', () => {
  const e = (name: string, platform: string | null) => ({
    name,
    platform: platform === null ? null : P(platform),
  });
  const index = [
    e('attestation', 'unknown/unknown'),
    e('arm6', 'linux/arm/v6'),
    e('arm7', 'linux/arm/v7'),
    e('arm64', 'linux/arm64/v8'),
    e('amd64', 'linux/amd64'),
    e('amd64-again', 'linux/amd64'),
    e('386', 'linux/386'),
    e('win', 'windows/amd64'),
  ];
  const pick = (entries: typeof index, want: string) => choosePlatformEntry(entries, P(want))?.name ?? null;
  assert.equal(pick(index, 'linux/amd64'), 'amd64', 'exact match, first listed on a tie');
  assert.equal(pick(index, 'linux/amd64/v2'), 'amd64', 'v2 runs the baseline amd64');
  assert.equal(pick(index, 'linux/arm/v7'), 'arm7', 'best variant, not the first compatible one');
  assert.equal(pick(index, 'linux/arm/v6'), 'arm6');
  assert.equal(pick(index, 'linux/arm/v5'), null, 'v5 cannot run v6 or v7');
  assert.equal(pick(index, 'linux/arm64'), 'arm64', 'index says v8, node says nothing: the same');
  assert.equal(pick(index, 'linux/s390x'), null);
  assert.equal(pick(index, 'windows/amd64'), 'win');
  const noAmd64 = index.filter((x) => !x.name.startsWith('amd64'));
  assert.equal(pick(noAmd64, 'linux/amd64'), '386', 'amd64 falls back to 386');
  assert.equal(
    pick(
      index.filter((x) => x.name.startsWith('arm')),
      'linux/arm64',
    ),
    'arm64',
  );
  assert.equal(
    pick([e('arm7', 'linux/arm/v7'), e('arm6', 'linux/arm/v6')], 'linux/arm64'),
    'arm7',
    'arm64 runs 32-bit arm',
  );
  // An entry with no platform is kept but sorted last.
  assert.equal(pick([e('bare', null), e('amd64', 'linux/amd64')], 'linux/amd64'), 'amd64');
  assert.equal(pick([e('bare', null), e('arm', 'linux/arm/v7')], 'linux/amd64'), 'bare');
  assert.equal(pick([], 'linux/amd64'), null);
});

test('maps the Node process platform to OCI names', () => {
  assert.deepEqual(hostPlatform('linux', 'x64'), { os: 'linux', architecture: 'amd64', variant: '' });
  assert.deepEqual(hostPlatform('linux', 'arm64'), { os: 'linux', architecture: 'arm64', variant: '' });
  assert.deepEqual(hostPlatform('linux', 'arm', '6'), { os: 'linux', architecture: 'arm', variant: 'v6' });
  assert.deepEqual(hostPlatform('linux', 'ppc64'), { os: 'linux', architecture: 'ppc64le', variant: '' });
  assert.deepEqual(normalizePlatform({}), { os: '', architecture: '', variant: '' });
});
