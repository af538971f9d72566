// The real helm (built by e2e/env/build-kube.sh) on the project's chart, for tests.
//
// helm refuses to lint, template or install a chart whose declared dependency is missing from its
// charts/ folder, even when the dependency's condition is false (helm/helm#8600), and the
// cert-manager chart cannot be fetched from its Helm repository here. But the chart's source is
// part of the cert-manager Go module (`deploy/charts/cert-manager`), which the Go module proxy
// serves: `go mod download github.com/cert-manager/cert-manager@<version>` (3.8 MB, into the Go
// module cache) and the chart is made as cert-manager's release tool makes it, by writing
// Chart.yaml from Chart.template.yaml with the version filled in. So the chart is copied once per
// process to a temporary directory with the REAL cert-manager chart of the version Chart.yaml
// pins in its charts/ folder, and every helm command runs on that copy.
import { execFile } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { requireBinaries } from './binaries.js';

const run = promisify(execFile);
const CHART = fileURLToPath(new URL('../../charts/pulltrace', import.meta.url));
const CERT_MANAGER_MODULE = 'github.com/cert-manager/cert-manager';

export interface HelmValuesOptions {
  /** `--set` pairs, e.g. `['nodeAgent.sameNodePolicy.enabled=true']`. */
  set?: string[];
  /** Values given as one `-f` file (written as JSON, which is YAML), after `valuesFiles`. */
  values?: Record<string, unknown>;
  /** `-f` files, in order. */
  valuesFiles?: string[];
}

export interface HelmTemplateOptions extends HelmValuesOptions {
  release?: string;
  namespace?: string;
  /** `--show-only` templates, e.g. `['templates/node-agent-rbac.yaml']` (default: all). */
  showOnly?: string[];
  /** `--kube-version` (default the built Kubernetes, v1.34.4). */
  kubeVersion?: string;
  /** `--api-versions` (capabilities a live cluster would report), e.g. `admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy`. */
  apiVersions?: string[];
  /** `--skip-schema-validation`: the templates' own checks only. */
  skipSchemaValidation?: boolean;
  /** `--include-crds` (the dependency's CRDs, if its values turn them on). */
  includeCrds?: boolean;
  binDir?: string;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The failure of a helm command; the message ends with helm's stderr. */
export class HelmError extends Error {
  constructor(
    readonly args: string[],
    readonly result: HelmResult,
  ) {
    super(`helm ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
    this.name = 'HelmError';
  }
}

interface Prepared {
  dir: string;
  chart: string;
}

let prepared: Promise<Prepared> | undefined;

/** The cert-manager version charts/pulltrace/Chart.yaml depends on. */
export function certManagerVersion(): string {
  const chartYaml = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as {
    dependencies?: { name: string; version: string }[];
  };
  const dep = (chartYaml.dependencies ?? []).find((d) => d.name === 'cert-manager');
  if (dep === undefined) throw new Error('charts/pulltrace/Chart.yaml declares no cert-manager dependency');
  return dep.version;
}

/** `go mod download` of the cert-manager module; returns its directory in the module cache. */
export async function certManagerModuleDir(version = certManagerVersion()): Promise<string> {
  const { stdout } = await run('go', ['mod', 'download', '-json', `${CERT_MANAGER_MODULE}@${version}`], {
    cwd: tmpdir(),
    env: { ...process.env, GO111MODULE: 'on', GOFLAGS: '-mod=mod' },
    maxBuffer: 1 << 20,
  }).catch((err: unknown) => {
    const stdout = (err as { stdout?: string }).stdout ?? '';
    throw new Error(
      `go mod download ${CERT_MANAGER_MODULE}@${version} failed (Go at /usr/local/go/bin and the Go module proxy needed): ${stdout}`,
      { cause: err },
    );
  });
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (info.Dir === undefined) throw new Error(`go mod download: ${info.Error ?? stdout}`);
  return info.Dir;
}

function makeWritable(path: string): void {
  chmodSync(path, statSync(path).isDirectory() ? 0o755 : 0o644);
  if (statSync(path).isDirectory()) for (const e of readdirSync(path)) makeWritable(join(path, e));
}

/** Writes the cert-manager chart of `version` from its Go module into `dest` (a charts/ entry). */
export async function writeCertManagerChart(dest: string, version = certManagerVersion()): Promise<void> {
  const src = join(await certManagerModuleDir(version), 'deploy', 'charts', 'cert-manager');
  cpSync(src, dest, { recursive: true });
  makeWritable(dest); // the module cache is read-only
  // What cert-manager's release tooling does: version and appVersion set, prerelease flag filled.
  const template = readFileSync(join(dest, 'Chart.template.yaml'), 'utf8');
  const chartYaml = template
    .replace(/^version: .*$/m, `version: ${version}`)
    .replace(/^appVersion: .*$/m, `appVersion: ${version}`)
    .replace('{{IS_PRERELEASE}}', String(version.includes('-')));
  if (!chartYaml.includes(`version: ${version}`)) {
    throw new Error(`${src}/Chart.template.yaml: no version line to set`);
  }
  writeFileSync(join(dest, 'Chart.yaml'), chartYaml);
  rmSync(join(dest, 'Chart.template.yaml'));
}

/** charts/pulltrace copied with the real cert-manager chart in its charts/ (once per process). */
export function preparedChart(): Promise<Prepared> {
  prepared ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pt-chart-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const chart = join(dir, 'pulltrace');
    cpSync(CHART, chart, { recursive: true });
    mkdirSync(join(chart, 'charts'), { recursive: true });
    await writeCertManagerChart(join(chart, 'charts', 'cert-manager'));
    return { dir, chart };
  })();
  return prepared;
}

/**
 * Runs the real helm with `args`; `{chart}` in args stands for the prepared chart directory.
 * Never rejects on a non-zero exit (see `code`). Helm's own directories are private to the run.
 */
export async function helm(
  args: string[],
  opts: { binDir?: string; kubeconfig?: string; timeoutMs?: number } = {},
): Promise<HelmResult> {
  const { helm: bin } = requireBinaries(['helm'], opts.binDir);
  const { dir, chart } = await preparedChart();
  const home = mkdtempSync(join(dir, 'home-'));
  const argv = args.map((a) => (a === '{chart}' ? chart : a));
  try {
    const { stdout, stderr } = await run(bin, argv, {
      maxBuffer: 64 << 20,
      timeout: opts.timeoutMs ?? 120_000,
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
        KUBECONFIG: opts.kubeconfig ?? join(home, 'no-kubeconfig'),
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** `-f`/`--set` arguments; a `values` object goes to a file in `dir`. */
function valuesArgs(opts: HelmValuesOptions, dir: string): string[] {
  const args = (opts.valuesFiles ?? []).flatMap((f) => ['-f', f]);
  if (opts.values !== undefined) {
    const file = join(dir, 'values.json');
    writeFileSync(file, JSON.stringify(opts.values));
    args.push('-f', file);
  }
  return [...args, ...(opts.set ?? []).flatMap((s) => ['--set', s])];
}

async function withValues<T>(opts: HelmValuesOptions, fn: (args: string[]) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'pt-values-'));
  try {
    return await fn(valuesArgs(opts, dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `helm template` arguments for `opts` (chart given as `{chart}`). */
function templateArgs(opts: HelmTemplateOptions, values: string[]): string[] {
  return [
    'template',
    opts.release ?? 'pulltrace',
    '{chart}',
    '--namespace',
    opts.namespace ?? 'pulltrace',
    '--kube-version',
    opts.kubeVersion ?? '1.34.4',
    ...values,
    ...(opts.showOnly ?? []).flatMap((s) => ['--show-only', s]),
    ...(opts.apiVersions ?? []).flatMap((a) => ['--api-versions', a]),
    ...(opts.skipSchemaValidation === true ? ['--skip-schema-validation'] : []),
    ...(opts.includeCrds === true ? ['--include-crds'] : []),
  ];
}

/** `helm template` of charts/pulltrace; returns the rendered YAML stream, throws HelmError on failure. */
export async function helmTemplate(opts: HelmTemplateOptions = {}): Promise<string> {
  return withValues(opts, async (values) => {
    const args = templateArgs(opts, values);
    const r = await helm(args, { binDir: opts.binDir });
    if (r.code !== 0) throw new HelmError(args, r);
    return r.stdout;
  });
}

export interface HelmLintOptions extends HelmValuesOptions {
  strict?: boolean;
  /** `--with-subcharts`: lint the cert-manager chart too. */
  withSubcharts?: boolean;
  kubeVersion?: string;
  binDir?: string;
}

/** `helm lint` of charts/pulltrace; resolves with helm's exit code and output. */
export async function helmLint(opts: HelmLintOptions = {}): Promise<HelmResult> {
  return withValues(opts, (values) =>
    helm(
      [
        'lint',
        '{chart}',
        ...values,
        ...(opts.strict === true ? ['--strict'] : []),
        ...(opts.withSubcharts === true ? ['--with-subcharts'] : []),
        ...(opts.kubeVersion === undefined ? [] : ['--kube-version', opts.kubeVersion]),
      ],
      { binDir: opts.binDir },
    ),
  );
}

export interface HelmInstallOptions extends HelmValuesOptions {
  release?: string;
  namespace?: string;
  kubeconfig: string;
  /** `--dry-run=server`: render against the cluster's API versions, change nothing. */
  dryRun?: boolean;
  binDir?: string;
}

/** `helm install` (or `upgrade --install`) of charts/pulltrace into a cluster; `-o json` parsed. */
export async function helmInstall(
  opts: HelmInstallOptions,
): Promise<{ manifest: string; notes: string; raw: unknown }> {
  return withValues(opts, async (values) => {
    const args = [
      'upgrade',
      '--install',
      opts.release ?? 'pulltrace',
      '{chart}',
      '--namespace',
      opts.namespace ?? 'pulltrace',
      ...values,
      ...(opts.dryRun === true ? ['--dry-run=server'] : []),
      '-o',
      'json',
    ];
    const r = await helm(args, { binDir: opts.binDir, kubeconfig: opts.kubeconfig });
    if (r.code !== 0) throw new HelmError(args, r);
    const raw = JSON.parse(r.stdout) as { manifest?: string; info?: { notes?: string } };
    return { manifest: raw.manifest ?? '', notes: raw.info?.notes ?? '', raw };
  });
}
