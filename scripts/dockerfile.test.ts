// Structural checks of the Dockerfile and .dockerignore (no container engine on these machines,
// so the image cannot be built here): two stages, npm ci + build in the first, only dist/,
// production node_modules and package.json in the second, a non-root numeric user, nothing
// secret, and a build context that keeps node_modules, .git and dist out but what the
// Dockerfile copies in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface Instruction {
  op: string;
  args: string;
  line: number;
}

interface Stage {
  base: string;
  name: string | null;
  instructions: Instruction[];
}

/** Dockerfile → instructions (continuations joined, comments dropped), grouped by FROM. */
function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === null && (line === '' || line.startsWith('#'))) return;
    if (pending !== null && line.startsWith('#')) return;
    const body = line.endsWith('\\') ? line.slice(0, -1) : line;
    pending =
      pending === null ? { text: body, line: i + 1 } : { ...pending, text: `${pending.text} ${body}` };
    if (!line.endsWith('\\')) {
      const m = /^(\S+)\s*(.*)$/.exec(pending.text.trim().replace(/\s+/g, ' '));
      if (m?.[1] !== undefined)
        instructions.push({ op: m[1].toUpperCase(), args: m[2] ?? '', line: pending.line });
      pending = null;
    }
  });
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args.replace(/--platform=\S+\s+/, ''));
      assert.ok(m?.[1] !== undefined, `line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ base: m[1], name: m[2] ?? null, instructions: [] });
    } else if (stages.length === 0) {
      args.push(ins);
    } else {
      stages[stages.length - 1]?.instructions.push(ins);
    }
  }
  return { args, stages };
}

/** `COPY [--from=x] a b dest` → { from, sources, dest }. */
function copyOf(ins: Instruction): { from: string | null; sources: string[]; dest: string } {
  const words = ins.args.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length) ?? null;
  const paths = words.filter((w) => !w.startsWith('--'));
  return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] ?? '' };
}

/** .dockerignore patterns (Go filepath.Match plus `**`) → does `path` get left out? */
function ignored(patterns: string[], path: string): boolean {
  let out = false;
  for (const p of patterns) {
    const negate = p.startsWith('!');
    const glob = (negate ? p.slice(1) : p).replace(/^\/+|\/+$/g, '');
    const re = new RegExp(
      `^${glob
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) =>
          part === '**/' || part === '**'
            ? '(?:.*/)?'
            : part === '*'
              ? '[^/]*'
              : part === '?'
                ? '[^/]'
                : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('')}(?:/.*)?$`,
    );
    if (re.test(path)) out = !negate;
  }
  return out;
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const ignorePatterns = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stageOps = (s: Stage | undefined, op: string) => (s?.instructions ?? []).filter((i) => i.op === op);
const build = dockerfile.stages[0];
const runtime = dockerfile.stages[dockerfile.stages.length - 1];

test('the parser joins continuations and groups instructions by stage', () => {
  const p = parseDockerfile('ARG A=1\nFROM x AS b\n# c\nRUN a \\\n  && b\nFROM y\nUSER 1\n');
  assert.deepEqual(
    p.args.map((a) => a.args),
    ['A=1'],
  );
  assert.deepEqual(
    p.stages.map((s) => [s.base, s.name, s.instructions.map((i) => `${i.op} ${i.args}`)]),
    [
      ['x', 'b', ['RUN a && b']],
      ['y', null, ['USER 1']],
    ],
  );
  assert.equal(ignored(['**/*.pem', 'dist'], 'certs/a/tls.pem'), true);
  assert.equal(ignored(['**/*.pem', 'dist'], 'dist/x.js'), true);
  assert.equal(ignored(['**/*.pem', 'dist'], 'distro'), false);
  assert.equal(ignored(['docs', '!docs/keep.md'], 'docs/keep.md'), false);
});

test('two stages on node:20-bookworm-slim: a named build stage and the runtime', () => {
  assert.equal(dockerfile.stages.length, 2, 'build + runtime');
  const image = dockerfile.args.find((a) => a.op === 'ARG' && a.args.startsWith('NODE_IMAGE='));
  const resolve = (base: string) =>
    base === '${NODE_IMAGE}' ? image?.args.slice('NODE_IMAGE='.length) : base;
  for (const s of dockerfile.stages) assert.equal(resolve(s.base), 'node:20-bookworm-slim');
  assert.equal(build?.name, 'build');
});

test('the build stage installs with npm ci from the lock file and runs npm run build', () => {
  const runs = stageOps(build, 'RUN').map((r) => r.args);
  const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r) && !r.includes('--omit=dev'));
  const compile = runs.findIndex((r) => /\bnpm run build\b/.test(r));
  assert.ok(ci >= 0, 'npm ci with the dev dependencies (tsc)');
  assert.ok(compile > ci, 'npm run build after npm ci');
  const copied = stageOps(build, 'COPY').flatMap((c) => copyOf(c).sources);
  assert.ok(copied.includes('package-lock.json'), 'the lock file is copied for npm ci');
  assert.ok(copied.includes('scripts/build.mjs'));
});

test('the build stage copies every source folder tsconfig.build.json compiles, and its configs', () => {
  const cfg = JSON.parse(read('tsconfig.build.json')) as { extends?: string; include?: string[] };
  const copied = new Set(stageOps(build, 'COPY').flatMap((c) => copyOf(c).sources));
  for (const dir of cfg.include ?? []) {
    assert.ok(copied.has(dir), `${dir} (compiled by tsconfig.build.json) is copied into the build stage`);
    assert.ok(!ignored(ignorePatterns, dir), `.dockerignore does not leave out ${dir}`);
  }
  assert.ok(copied.has('tsconfig.build.json'));
  if (cfg.extends !== undefined) assert.ok(copied.has(cfg.extends.replace(/^\.\//, '')));
  // The two entry points the image documents exist as sources.
  for (const main of ['webhook/main.ts', 'node-agent/main.ts'])
    assert.ok(existsSync(new URL(main, root)), main);
});

test('the runtime stage holds only dist/, production node_modules and package.json', () => {
  const runs = stageOps(runtime, 'RUN').map((r) => r.args);
  assert.ok(
    runs.some((r) => /\bnpm ci\b[^&]*--omit=dev/.test(r)),
    'npm ci --omit=dev in the runtime stage',
  );
  assert.ok(!runs.some((r) => /\bnpm (install|i)\b/.test(r)), 'npm ci, not npm install');
  const copies = stageOps(runtime, 'COPY').map(copyOf);
  const fromBuild = copies.filter((c) => c.from === 'build');
  assert.deepEqual(
    fromBuild.map((c) => c.sources),
    [['/src/dist']],
    'only dist/ comes from the build stage',
  );
  const fromContext = copies.filter((c) => c.from === null).flatMap((c) => c.sources);
  assert.deepEqual(fromContext.sort(), ['package-lock.json', 'package.json']);
  assert.equal(stageOps(runtime, 'ADD').length, 0, 'no ADD (remote URLs, archives)');
  assert.deepEqual(
    stageOps(runtime, 'WORKDIR').map((w) => w.args),
    ['/app'],
  );
});

test('the image runs as uid 65532, not root, and has no server as its default command', () => {
  const users = stageOps(runtime, 'USER').map((u) => u.args);
  const last = users[users.length - 1];
  assert.ok(last !== undefined, 'a USER in the runtime stage');
  assert.equal(last, '65532:65532');
  assert.ok(!/^(root|0)(:|$)/.test(last));
  // Nothing runs after USER that could need root (it would fail at build time anyway).
  const ins = runtime?.instructions ?? [];
  const userAt = ins.findIndex((i) => i.op === 'USER');
  assert.ok(!ins.slice(userAt).some((i) => i.op === 'RUN'), 'no RUN after USER');
  const cmd = stageOps(runtime, 'CMD').map((c) => c.args);
  assert.equal(cmd.length, 1);
  assert.match(cmd[0] ?? '', /--help/, 'the default command only prints how to run the image');
  assert.match(cmd[0] ?? '', /\/app\/dist\/webhook\/main\.js/);
  assert.match(cmd[0] ?? '', /\/app\/dist\/node-agent\/main\.js/);
});

test('no secrets: no credential-like ARG/ENV, no key material copied, no registry auth', () => {
  const all = [...dockerfile.args, ...dockerfile.stages.flatMap((s) => s.instructions)];
  for (const i of all.filter((x) => x.op === 'ARG' || x.op === 'ENV')) {
    assert.doesNotMatch(i.args, /(pass(word)?|secret|token|api_?key|credential|auth)/i, `line ${i.line}`);
  }
  for (const i of all.filter((x) => x.op === 'COPY' || x.op === 'ADD')) {
    assert.doesNotMatch(i.args, /\.(pem|key|crt|p12)\b|\.npmrc|\.env\b|id_rsa|kubeconfig/i, `line ${i.line}`);
  }
  for (const i of all.filter((x) => x.op === 'RUN')) {
    assert.doesNotMatch(i.args, /_authToken|--password|NPM_TOKEN|curl .*-u /i, `line ${i.line}`);
  }
});

test('.dockerignore keeps node_modules, .git, dist and key material out of the context', () => {
  for (const path of [
    'node_modules',
    'node_modules/x/index.js',
    '.git',
    '.git/config',
    'dist',
    'dist/a.js',
  ]) {
    assert.ok(ignored(ignorePatterns, path), `${path} is ignored`);
  }
  for (const path of ['certs/out/tls.key', 'tmp/ca.pem', '.env']) {
    assert.ok(ignored(ignorePatterns, path), `${path} is ignored`);
  }
  const copied = dockerfile.stages
    .flatMap((s) => stageOps(s, 'COPY'))
    .map(copyOf)
    .filter((c) => c.from === null)
    .flatMap((c) => c.sources);
  for (const path of copied) assert.ok(!ignored(ignorePatterns, path), `${path} is copied, so not ignored`);
});
