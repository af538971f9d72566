// Structural checks of the GitHub Actions workflows (they cannot run here): valid YAML, the
// jobs the project relies on, npm scripts that exist, actions pinned to a version, no secret
// beyond the workflow's own GITHUB_TOKEN, and `needs` that name real jobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { parse } from 'yaml';

const dir = new URL('../.github/workflows/', import.meta.url);

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}

interface Job {
  'runs-on'?: string;
  needs?: string | string[];
  steps?: Step[];
  permissions?: Record<string, string>;
  container?: { image?: string; options?: string };
}

interface Workflow {
  name?: string;
  on?: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs?: Record<string, Job>;
}

function load(name: string): Workflow {
  return parse(readFileSync(new URL(name, dir), 'utf8'), { strict: true, uniqueKeys: true }) as Workflow;
}

const files = readdirSync(dir).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'));
const workflows = new Map(files.map((f) => [f, load(f)]));
const scripts = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts;

const jobsOf = (f: string): Record<string, Job> => workflows.get(f)?.jobs ?? {};
const runs = (job: Job | undefined): string => (job?.steps ?? []).map((s) => s.run ?? '').join('\n');
const uses = (job: Job | undefined): string[] =>
  (job?.steps ?? []).flatMap((s) => (s.uses === undefined ? [] : [s.uses]));

test('the three workflows exist and parse', () => {
  for (const f of ['ci.yml', 'docs.yml', 'release.yml']) assert.ok(workflows.has(f), f);
  for (const [f, w] of workflows) {
    assert.equal(typeof w.name, 'string', `${f}: name`);
    assert.ok(w.on !== undefined && typeof w.on === 'object', `${f}: on (a map, not YAML 1.1's true)`);
    assert.ok(Object.keys(w.jobs ?? {}).length > 0, `${f}: jobs`);
  }
});

test('ci: lint, typecheck, unit and the full suite through .ci/run, on pushes and pull requests', () => {
  const w = workflows.get('ci.yml');
  assert.ok(w?.on !== undefined && 'pull_request' in w.on && 'push' in w.on);
  const jobs = jobsOf('ci.yml');
  assert.match(runs(jobs.lint), /npm run lint\b/);
  assert.match(runs(jobs.typecheck), /npm run typecheck\b/);
  assert.match(runs(jobs.unit), /npm run test:unit\b|npm test -- --unit\b/);
  const full = jobs.full;
  assert.match(runs(full), /^bash \.ci\/run$/m);
  assert.match(
    full?.container?.image ?? '',
    /^node:20-bookworm/,
    'the full suite runs on Debian bookworm like .ci/run expects',
  );
  assert.match(runs(full), /\/usr\/bin\/kubectl/, 'kubectl is installed where e2e looks for it');
  assert.ok(uses(jobs.image).some((u) => u.startsWith('docker/build-push-action@')));
});

test('every `npm run X` in a workflow names a script of package.json', () => {
  for (const [f, w] of workflows) {
    for (const [name, job] of Object.entries(w.jobs ?? {})) {
      for (const m of runs(job).matchAll(/npm run ([\w:-]+)/g)) {
        assert.ok(m[1] !== undefined && m[1] in scripts, `${f} ${name}: npm run ${m[1] ?? ''}`);
      }
    }
  }
});

test('release: on tags v*, the image to GHCR, the chart as OCI and in a merged classic index', () => {
  const w = workflows.get('release.yml');
  const push = w?.on?.push as { tags?: string[] } | undefined;
  assert.deepEqual(push?.tags, ['v*']);
  const jobs = jobsOf('release.yml');
  const image = jobs.image;
  const build = image?.steps?.find((s) => s.uses?.startsWith('docker/build-push-action@'));
  assert.ok(build !== undefined, 'docker/build-push-action');
  assert.equal(build.with?.push, true);
  assert.ok(uses(image).some((u) => u.startsWith('docker/login-action@')));
  assert.equal(image?.permissions?.packages, 'write');
  const meta = image.steps?.find((s) => s.uses?.startsWith('docker/metadata-action@'));
  assert.match(String(meta?.with?.images), /^\$\{\{ env\.REGISTRY \}\}\//);
  assert.match(readFileSync(new URL('release.yml', dir), 'utf8'), /REGISTRY: ghcr\.io/);

  const chart = runs(jobs.chart);
  assert.match(chart, /helm package charts\/pulltrace\b/);
  assert.match(chart, /helm push \S+ "oci:\/\/\$REGISTRY\/\$owner\/charts"/);
  assert.match(chart, /helm repo index[\s\S]*"\$\{merge\[@\]\}"/, 'helm repo index --merge');
  assert.match(chart, /--merge \.pages\/charts\/index\.yaml/);
  assert.match(chart, /git -C \.pages push origin HEAD:gh-pages/);
  const needs = [jobs.chart?.needs ?? []].flat();
  assert.ok(needs.includes('image'), 'the chart is published after its image');
});

test('docs: mkdocs gh-deploy, keeping the chart index release.yml put on gh-pages', () => {
  const jobs = jobsOf('docs.yml');
  const deploy = Object.values(jobs).find((j) => /mkdocs gh-deploy/.test(runs(j)));
  assert.ok(deploy !== undefined, 'a job runs mkdocs gh-deploy');
  assert.match(runs(deploy), /pip install 'mkdocs-material/);
  assert.match(runs(deploy), /charts\/index\.yaml/);
  assert.equal(deploy.permissions?.contents, 'write');
});

test('actions pinned to a version; no secret but GITHUB_TOKEN; least-privilege defaults; real needs', () => {
  for (const [f, w] of workflows) {
    const text = readFileSync(new URL(f, dir), 'utf8');
    assert.equal(w.permissions?.contents, 'read', `${f}: the default token is read-only`);
    for (const m of text.matchAll(/secrets\.(\w+)/g))
      assert.equal(m[1], 'GITHUB_TOKEN', `${f}: secrets.${m[1] ?? ''}`);
    for (const [name, job] of Object.entries(w.jobs ?? {})) {
      assert.equal(typeof job['runs-on'], 'string', `${f} ${name}: runs-on`);
      assert.ok((job.steps ?? []).length > 0, `${f} ${name}: steps`);
      for (const u of uses(job))
        assert.match(u, /^[\w.-]+\/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})$/, `${f} ${name}: ${u}`);
      for (const n of [job.needs ?? []].flat()) assert.ok(n in (w.jobs ?? {}), `${f} ${name}: needs ${n}`);
    }
  }
});

test('every run block is valid bash and takes ${{ }} values through env, not pasted into the script', () => {
  let checked = 0;
  for (const [f, w] of workflows) {
    for (const [name, job] of Object.entries(w.jobs ?? {})) {
      for (const step of job.steps ?? []) {
        if (step.run === undefined) continue;
        checked++;
        assert.ok(!step.run.includes('${{'), `${f} ${name}: expression inside run: ${step.run}`);
        const r = spawnSync('bash', ['-n'], { input: step.run, encoding: 'utf8' });
        assert.equal(r.status, 0, `${f} ${name}: bash -n: ${r.stderr}\n${step.run}`);
      }
    }
  }
  assert.ok(checked >= 15, `${checked} run blocks`);
});
