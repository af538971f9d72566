// The real helm (built by e2e/env/build-kube.sh) rendering the project's chart for tests.
// helm refuses to template a chart whose declared dependency is missing from charts/, even when
// the dependency's condition is false (helm/helm#8600), and cert-manager's chart cannot be
// fetched here. So the chart is copied to a temporary directory with an EMPTY stand-in chart
// named cert-manager (Chart.yaml only, never rendered while certManager.install is false) to
// satisfy that check. Rendering with certManager.install=true is refused on purpose.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { requireBinaries } from './binaries.js';

const run = promisify(execFile);
const CHART = fileURLToPath(new URL('../../charts/pulltrace', import.meta.url));

export interface HelmTemplateOptions {
  release?: string;
  namespace?: string;
  /** `--set` pairs, e.g. `['nodeAgent.sameNodePolicy.enabled=true']`. */
  set?: string[];
  /** `--show-only` templates, e.g. `['templates/node-agent-rbac.yaml']` (default: all). */
  showOnly?: string[];
  /** `--kube-version` (default the built Kubernetes, v1.34.4). */
  kubeVersion?: string;
  /** `--api-versions` (capabilities a live cluster would report), e.g. `admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy`. */
  apiVersions?: string[];
  binDir?: string;
}

/** `helm template` of charts/pulltrace; returns the rendered YAML stream. */
export async function helmTemplate(opts: HelmTemplateOptions = {}): Promise<string> {
  const { helm } = requireBinaries(['helm'], opts.binDir);
  const set = opts.set ?? [];
  if (set.some((s) => s.startsWith('certManager.install=true'))) {
    throw new Error(
      'helmTemplate: certManager.install=true needs the real cert-manager chart, not the empty stand-in',
    );
  }
  const tmp = mkdtempSync(join(tmpdir(), 'pt-chart-'));
  try {
    const chart = join(tmp, 'pulltrace');
    cpSync(CHART, chart, { recursive: true });
    const chartYaml = parse(readFileSync(join(chart, 'Chart.yaml'), 'utf8')) as {
      dependencies?: { name: string; version: string }[];
    };
    for (const dep of chartYaml.dependencies ?? []) {
      mkdirSync(join(chart, 'charts', dep.name), { recursive: true });
      writeFileSync(
        join(chart, 'charts', dep.name, 'Chart.yaml'),
        `apiVersion: v2\nname: ${dep.name}\nversion: ${dep.version}\ndescription: empty stand-in (e2e/cluster/helm.ts)\n`,
      );
    }
    const args = [
      'template',
      opts.release ?? 'pulltrace',
      chart,
      '--namespace',
      opts.namespace ?? 'pulltrace',
      '--kube-version',
      opts.kubeVersion ?? '1.34.4',
      ...set.flatMap((s) => ['--set', s]),
      ...(opts.showOnly ?? []).flatMap((s) => ['--show-only', s]),
      ...(opts.apiVersions ?? []).flatMap((a) => ['--api-versions', a]),
    ];
    const { stdout } = await run(helm, args, {
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(tmp, 'cache'),
        HELM_CONFIG_HOME: join(tmp, 'config'),
        HELM_DATA_HOME: join(tmp, 'data'),
      },
    }).catch((err: unknown) => {
      throw new Error(`helm ${args.join(' ')} failed`, { cause: err });
    });
    return stdout;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
