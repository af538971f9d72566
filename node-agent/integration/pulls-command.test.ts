// `pulltrace-node-agent pulls` as a user runs it, against a real containerd during a real pull.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { IMAGE_STATUS_FIELDS } from '../../common/contract.js';
import { CriPuller } from '../../e2e/env/cri-puller.js';
import { buildImage } from '../../e2e/env/image-builder.js';
import { startTestEnv, type TestEnv } from '../../e2e/env/test-env.js';
import { GrpcContainerdSource } from '../containerd/grpc-client.js';

const MAIN = new URL('../main.ts', import.meta.url).pathname;
let env: TestEnv;
let puller: CriPuller;

before(async () => {
  env = await startTestEnv({ rate: 2 * 1024 * 1024 });
  puller = new CriPuller(env.containerd.address);
});
after(async () => {
  await env.stop();
});

/**
 * Runs the command to its end. Not spawnSync: the throttle the pulls go through runs in this
 * process, and blocking it would stall the very pull being looked at.
 */
function agent(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { encoding: 'utf8', timeout: 30_000 },
      (_err, stdout, stderr) => {
        resolve({ status: child.exitCode, stdout, stderr });
      },
    );
  });
}

test('pulls --json prints one object per image with the documented fields; the table shows it too', async () => {
  const img = await buildImage({
    registry: env.pushHost,
    name: 'team/cmd:1',
    layers: [4_000_000, 4_000_000],
  });
  const ref = `${env.pullHost}/team/cmd:1`;
  // Slow enough to still be running however long the command takes to start on a busy
  // machine; sped up once both commands have looked at it.
  env.throttle.setRate(512 * 1024);
  const pulling = puller.pullImage(ref);
  pulling.catch(() => undefined);
  const source = new GrpcContainerdSource({ address: env.containerd.socketPath });
  try {
    const end = Date.now() + 10_000;
    while (!(await source.listIngests()).some((i) => i.offset > 0) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    source.close();
  }
  // Both at once: each takes seconds to start on a busy machine, the pull must still be running.
  const [r, t] = await Promise.all([
    agent(['pulls', '--containerd-address', env.containerd.socketPath, '--poll-interval', '300ms', '--json']),
    agent(['pulls', '--containerd-address', env.containerd.socketPath, '--poll-interval', '300ms']),
  ]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, r.stdout);
  const o = JSON.parse(lines[0]!) as Record<string, unknown>;
  for (const f of IMAGE_STATUS_FIELDS) assert.ok(f in o, `field ${f} in ${lines[0]}`);
  assert.equal(o.phase, 'Downloading');
  assert.equal(o.bytesTotal, img.totalSize);
  assert.ok(
    typeof o.percent === 'number' && o.percent > 0 && o.percent < 100,
    `percent ${String(o.percent)}`,
  );
  assert.ok(
    typeof o.bytesPerSecond === 'number' && o.bytesPerSecond > 0,
    `a rate after two polls: ${lines[0]}`,
  );

  assert.equal(t.status, 0, t.stderr);
  const [header, row] = t.stdout.split('\n');
  assert.match(header ?? '', /^IMAGE\s+PHASE\s+PROGRESS\s+BYTES\s+CACHED\s+LAYERS\s+RATE\s+ETA\s+AGE$/);
  assert.match(row ?? '', /127\.0\.0\.1\/team\/cmd@sha256:[0-9a-f]{64}\s+Downloading\s+\d+%/);
  env.throttle.setRate(64 * 1024 * 1024);
  await pulling;
  env.throttle.setRate(2 * 1024 * 1024);
});

test('pulls --watch --json keeps printing until the pull is Pulled, and exits 0 on SIGINT', async () => {
  await buildImage({ registry: env.pushHost, name: 'team/watch:1', layers: [2_000_000, 2_000_000] });
  const ref = `${env.pullHost}/team/watch:1`;
  // The pull first (512 KiB/s: about 8 s), then the watcher: it finds a pull already running
  // (its lease), so nothing has to be up "in time" — no sleep standing in for readiness.
  env.throttle.setRate(512 * 1024);
  const pulling = puller.pullImage(ref);
  const source = new GrpcContainerdSource({ address: env.containerd.socketPath });
  try {
    const until = Date.now() + 10_000;
    while (!(await source.listIngests()).some((i) => i.ref.startsWith('layer-')) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 50));
  } finally {
    source.close();
  }
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'pulls',
      '--containerd-address',
      env.containerd.socketPath,
      '--poll-interval',
      '200ms',
      '--watch',
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await pulling;
    env.throttle.setRate(2 * 1024 * 1024);
    const deadline = Date.now() + 10_000;
    while (!out.includes('"phase":"Pulled"') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
  } finally {
    child.kill('SIGINT');
  }
  assert.equal(await exited, 0, err);
  const objs = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { image: string; phase: string; percent: number });
  const mine = objs.filter((o) => o.image.includes('team/watch'));
  assert.ok(mine.length >= 3, `printed ${mine.length} updates:\n${out}`);
  assert.equal(mine.at(-1)?.phase, 'Pulled');
  assert.equal(mine.at(-1)?.image, ref, 'named from the image record at the end');
  for (let i = 1; i < mine.length; i++) assert.ok(mine[i]!.percent >= mine[i - 1]!.percent);
});

test('pulls says why and exits 1 when containerd is not there; 2 on a bad flag', async () => {
  const r = await agent(['pulls', '--containerd-address', `${env.dir}/nothing.sock`]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot read containerd at .*nothing\.sock: containerd is not reachable/);
  const bad = await agent(['pulls', '--poll-interval', 'soon']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /poll-interval/);
});
