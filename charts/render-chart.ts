// Renders a chart directory the way `helm template` does, with charts/template-engine.ts: values
// from values.yaml coalesced with overrides, the built-in objects (.Values, .Release, .Chart,
// .Capabilities, .Template), every templates/ file that does not start with `_`, NOTES.txt apart.
// Subcharts are not rendered (their templates are not in this repository). YAML is read as
// YAML 1.1, as Helm and Kubernetes read it (`on` is a boolean, `0440` is octal).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { GoInt, goStruct, TemplateSet } from './template-engine.js';

export type Values = Record<string, unknown>;

export interface RenderOptions {
  /** Merged over values.yaml like `-f`/`--set`: maps merge, anything else replaces, null deletes. */
  values?: Values;
  releaseName?: string;
  namespace?: string;
  /** `.Capabilities.KubeVersion.Version`, e.g. v1.33.0. */
  kubeVersion?: string;
  /** `.Capabilities.APIVersions`: entries "group/version" and "group/version/Kind". */
  apiVersions?: string[];
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

export interface RenderedChart {
  values: Values;
  /** Rendered text of each template file, by path relative to the chart (templates/x.yaml). */
  files: Map<string, string>;
  notes: string;
  /** Every non-empty YAML document of the rendered files, with the file it came from. */
  objects: (KubeObject & { __file: string })[];
}

function isMap(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's coalescing of user values over chart defaults. */
export function mergeValues(base: Values, over: Values): Values {
  const deleted = new Set(Object.keys(over).filter((k) => over[k] === null));
  const out: Values = Object.fromEntries(Object.entries(base).filter(([k]) => !deleted.has(k)));
  for (const [k, v] of Object.entries(over)) {
    if (v === null) continue;
    const b = out[k];
    out[k] = isMap(v) && isMap(b) ? mergeValues(b, v) : v;
  }
  return out;
}

/** Reads a YAML file (one document) as YAML 1.1. */
export function readYaml(path: string): unknown {
  return parse(readFileSync(path, 'utf8'), { version: '1.1' });
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

export function renderChart(chartDir: string, opts: RenderOptions = {}): RenderedChart {
  const chart = readYaml(join(chartDir, 'Chart.yaml')) as Values;
  const defaults = readYaml(join(chartDir, 'values.yaml')) as Values;
  const values = mergeValues(defaults, opts.values ?? {});
  const kubeVersion = opts.kubeVersion ?? 'v1.33.0';
  const [, major = '', minor = ''] = /^v?(\d+)\.(\d+)/.exec(kubeVersion) ?? [];
  const apiVersions = opts.apiVersions ?? [];
  const releaseName = opts.releaseName ?? 'pulltrace';
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');

  const set = new TemplateSet();
  const templatesDir = join(chartDir, 'templates');
  const files = listFiles(templatesDir).map((p) => relative(chartDir, p));
  for (const f of files) set.add(f, readFileSync(join(chartDir, f), 'utf8'));

  const dataFor = (file: string) =>
    goStruct({
      Values: values,
      Release: goStruct({
        Name: releaseName,
        Namespace: opts.namespace ?? 'pulltrace',
        Service: 'Helm',
        IsInstall: true,
        IsUpgrade: false,
        Revision: new GoInt(1),
      }),
      Chart: goStruct({
        Name: str(chart.name),
        Version: str(chart.version),
        AppVersion: str(chart.appVersion),
      }),
      Capabilities: goStruct({
        KubeVersion: goStruct({ Version: kubeVersion, GitVersion: kubeVersion, Major: major, Minor: minor }),
        APIVersions: goStruct({ Has: (v: unknown) => typeof v === 'string' && apiVersions.includes(v) }),
      }),
      Template: goStruct({ Name: `${str(chart.name)}/${file}`, BasePath: `${str(chart.name)}/templates` }),
    });

  const out = new Map<string, string>();
  let notes = '';
  const objects: RenderedChart['objects'] = [];
  for (const f of files) {
    const base = f.split('/').pop() ?? '';
    if (base.startsWith('_')) continue;
    const text = set.render(f, dataFor(f));
    if (base === 'NOTES.txt') {
      notes = text;
      continue;
    }
    out.set(f, text);
    for (const doc of parseAllDocuments(text, { version: '1.1' })) {
      if (doc.errors.length > 0) {
        throw new Error(`${f}: rendered YAML is not valid: ${doc.errors.map((e) => e.message).join('; ')}`);
      }
      const obj: unknown = doc.toJS();
      if (obj === null || obj === undefined) continue;
      if (!isMap(obj)) throw new Error(`${f}: a rendered document is not an object`);
      objects.push({ ...(obj as KubeObject), __file: f });
    }
  }
  return { values, files: out, notes, objects };
}
