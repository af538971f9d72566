// `npm run sandbox -- up|image|down`: the local sandbox, driven from scripts.
//   up --dir DIR [--rate BYTES_PER_SEC]   start everything in the background; writes DIR/env
//   image NAME:TAG --layers 20,20,10 [--base NAME:TAG] [--cmd /true] [--dir DIR]   build and push a test image
//   down --dir DIR                         stop everything and remove DIR's state
// `up` starts this same program as `run` in a detached process (the supervisor), which holds
// the throttle, the control plane's and kubelet's processes, the webhook and the node agent, and
// returns once DIR/env is written.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { errorMessage } from '../../common/errors.js';
import { createLogger } from '../../common/logging.js';
import { buildImage, type Layer } from '../env/image-builder.js';
import { logTail } from '../env/process.js';
import { readSandboxEnv, startSandbox } from './sandbox.js';

const SELF = fileURLToPath(import.meta.url);

function parseRate(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be bytes per second, ≥ 0');
  return n;
}

function parseLayers(v: string): number[] {
  const sizes = v.split(',').map((x) => Number(x.trim()));
  if (sizes.length === 0 || sizes.some((n) => !Number.isFinite(n) || n <= 0)) {
    throw new InvalidArgumentError('must be layer sizes in MB, e.g. 20,20,10');
  }
  return sizes.map((mb) => Math.round(mb * 1_000_000));
}

const pidFile = (dir: string) => join(dir, 'supervisor.pid');

async function up(dir: string, rate: number | undefined): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (existsSync(pidFile(dir))) {
    const pid = Number(readFileSync(pidFile(dir), 'utf8'));
    if (alive(pid))
      throw new Error(`a sandbox already runs in ${dir} (pid ${pid}); 'down --dir ${dir}' first`);
  }
  rmSync(join(dir, 'env'), { force: true });
  const logPath = join(dir, 'sandbox.log');
  const out = openSync(logPath, 'a');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', SELF, 'run', '--dir', dir, ...(rate === undefined ? [] : ['--rate', String(rate)])],
    { detached: true, stdio: ['ignore', out, out] },
  );
  child.unref();
  writeFileSync(pidFile(dir), String(child.pid));
  const deadline = Date.now() + 240_000;
  while (!existsSync(join(dir, 'env'))) {
    if (child.exitCode !== null || (child.pid !== undefined && !alive(child.pid))) {
      throw new Error(`the sandbox did not start; ${logPath}:\n${logTail(logPath, 30)}`);
    }
    if (Date.now() > deadline) throw new Error(`the sandbox did not start in 240 s; see ${logPath}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  process.stdout.write(readFileSync(join(dir, 'env'), 'utf8'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function down(dir: string): Promise<void> {
  if (existsSync(pidFile(dir))) {
    const pid = Number(readFileSync(pidFile(dir), 'utf8'));
    if (alive(pid)) {
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 30_000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** The supervisor: runs the sandbox in this process until SIGTERM/SIGINT. */
async function runForeground(dir: string, rate: number | undefined): Promise<void> {
  const logger = createLogger('pulltrace-sandbox', 'info');
  const sb = await startSandbox({ dir, logger, ...(rate === undefined ? {} : { rate }) });
  await new Promise<void>((resolveStop) => {
    process.once('SIGTERM', () => resolveStop());
    process.once('SIGINT', () => resolveStop());
  });
  await sb.stop();
}

interface SavedImage {
  reference: string;
  layers: { digest: string; size: number; diffId: string }[];
}

async function image(
  dir: string,
  name: string,
  layers: number[],
  base: string | undefined,
  cmd: string,
): Promise<void> {
  const env = readSandboxEnv(dir);
  const store = join(dir, 'images');
  mkdirSync(join(store, 'blobs'), { recursive: true });
  const file = (n: string) => join(store, `${n.replace(/[/:]/g, '_')}.json`);
  let baseLayers: Layer[] = [];
  if (base !== undefined) {
    if (!existsSync(file(base))) throw new Error(`no image ${base} built in this sandbox (build it first)`);
    const saved = JSON.parse(readFileSync(file(base), 'utf8')) as SavedImage;
    baseLayers = saved.layers.map((l) => ({
      ...l,
      data: readFileSync(join(store, 'blobs', l.digest.replace('sha256:', ''))),
    }));
  }
  const built = await buildImage({ registry: env.REGISTRY, name, layers, baseLayers, cmd: [cmd] });
  for (const l of built.layers) writeFileSync(join(store, 'blobs', l.digest.replace('sha256:', '')), l.data);
  const saved: SavedImage = {
    reference: built.reference,
    layers: built.layers.map((l) => ({ digest: l.digest, size: l.size, diffId: l.diffId })),
  };
  writeFileSync(file(name), JSON.stringify(saved));
  process.stdout.write(
    `${env.PULL_REGISTRY}/${name} ${built.totalSize} bytes (${built.layers.length} layers, manifest ${built.manifestDigest})\n`,
  );
}

const program = new Command('sandbox')
  .description('The pulltrace local sandbox (see e2e/sandbox/).')
  .exitOverride();
const dirOption = (c: Command) => c.option('--dir <dir>', 'state directory', '.sandbox');
dirOption(program.command('up').description('start everything in the background'))
  .option('--rate <bytes-per-second>', 'throttle rate for pulls', parseRate)
  .action((o: { dir: string; rate?: number }) => up(resolve(o.dir), o.rate));
dirOption(program.command('run', { hidden: true }))
  .option('--rate <bytes-per-second>', 'throttle rate for pulls', parseRate)
  .action((o: { dir: string; rate?: number }) => runForeground(resolve(o.dir), o.rate));
dirOption(program.command('image <name:tag>').description('build and push a test image'))
  .requiredOption('--layers <mb,...>', 'sizes of the new layers in MB', parseLayers)
  .option('--base <name:tag>', 'put the layers of this earlier-built image first (shared)')
  .addOption(
    new Option('--cmd <program>', 'the command: /sleep runs until stopped, /true exits at once')
      .choices(['/sleep', '/true'])
      .default('/sleep'),
  )
  .action((name: string, o: { dir: string; layers: number[]; base?: string; cmd: string }) =>
    image(resolve(o.dir), name, o.layers, o.base, o.cmd),
  );
dirOption(program.command('down').description('stop everything and remove the state')).action(
  (o: { dir: string }) => down(resolve(o.dir)),
);

program.parseAsync(process.argv).then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    process.stderr.write(`sandbox: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
