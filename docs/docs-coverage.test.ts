// The documentation keeps up with the code: every flag the programs accept is in
// docs/configuration.md with its env var and default, every metric they register is in
// docs/metrics.md with its type and labels, every page of mkdocs.yml's nav exists (and every
// page is in the nav), and links between pages point at files and headings that exist.
// The flags and metrics come from the programs' own definitions, not from a list kept here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { Command, type Option } from 'commander';
import type { Registry } from 'prom-client';
import { parse } from 'yaml';
import { program } from '../cli/plugin.js';
import { envName } from '../common/options.js';
import { addAgentOptions, addPullsOptions } from '../node-agent/config.js';
import { FakeContainerdSource } from '../test-support/fake-containerd.js';
import { createAgentMetrics, type PublisherStats } from '../node-agent/metrics.js';
import { PullTracker } from '../node-agent/tracker/tracker.js';
import { webhookCommand } from '../webhook/config.js';
import { createWebhookMetrics } from '../webhook/metrics.js';

const docsDir = new URL('./', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, docsDir), 'utf8');

/** Lines outside fenced code blocks. */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

/** The part of a page under the `## heading` whose text is `title`, up to the next `## `. */
function section(text: string, title: string): string[] {
  const lines = prose(text);
  const start = lines.findIndex((l) => l === `## ${title}`);
  assert.ok(start >= 0, `a "## ${title}" section`);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => l.startsWith('## '));
  return end < 0 ? rest : rest.slice(0, end);
}

/** Table rows of a section whose first cell is in backquotes, as trimmed cells. */
function rows(lines: string[]): string[][] {
  return lines
    .filter((l) => l.startsWith('| `'))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
}

const plain = (cell: string | undefined) => (cell ?? '').replace(/`/g, '');

/** What the default column must say for an option of the two programs. */
function expectedDefault(o: Option): string {
  if (o.defaultValueDescription !== undefined) return o.defaultValueDescription;
  const d: unknown = o.defaultValue;
  if (d === undefined) return 'required';
  if (d === '') return '""';
  return typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean'
    ? String(d)
    : JSON.stringify(d);
}

const configuration = read('configuration.md');
const programs: { title: string; options: readonly Option[] }[] = [
  { title: '`pulltrace-webhook`', options: webhookCommand().options },
  { title: '`pulltrace-node-agent`', options: addAgentOptions(new Command()).options },
  { title: '`pulltrace-node-agent pulls`', options: addPullsOptions(new Command()).options },
];

test('every flag of both programs is in docs/configuration.md with its env var and default', () => {
  let checked = 0;
  for (const { title, options } of programs) {
    assert.ok(options.length > 0, title);
    const table = rows(section(configuration, title));
    for (const o of options) {
      assert.ok(o.long !== undefined, `${title}: ${o.flags} has a long name`);
      assert.equal(o.envVar, envName(o.long), `${o.flags}: env var follows the PULLTRACE_* rule`);
      const row = table.find((r) => r[0] === `\`${o.flags}\``);
      assert.ok(row !== undefined, `${title}: a row for \`${o.flags}\``);
      assert.equal(row[1], `\`${o.envVar}\``, `${title} ${o.flags}: env var column`);
      assert.equal(plain(row[2]), expectedDefault(o), `${title} ${o.flags}: default column`);
      assert.ok((row[3] ?? '').length > 20, `${title} ${o.flags}: a description`);
      checked++;
    }
    // ...and nothing documented that the program does not accept.
    for (const r of table.filter((x) => /^`-/.test(x[0] ?? ''))) {
      assert.ok(
        options.some((o) => `\`${o.flags}\`` === r[0]),
        `${title}: ${r[0] ?? ''} is documented but not a flag of the program`,
      );
    }
  }
  assert.ok(checked >= 25, `${checked} flags checked`);
});

test("the chart values named in docs/configuration.md exist in the chart's values.yaml", () => {
  const values = parse(
    readFileSync(new URL('../charts/pulltrace/values.yaml', import.meta.url), 'utf8'),
  ) as unknown;
  const has = (path: string) =>
    path
      .split('.')
      .reduce<unknown>(
        (node, key) =>
          typeof node === 'object' && node !== null && key in node
            ? (node as Record<string, unknown>)[key]
            : undefined,
        values,
      ) !== undefined;
  let checked = 0;
  for (const { title } of programs.slice(0, 2)) {
    for (const row of rows(section(configuration, title))) {
      for (const m of (row[4] ?? '').matchAll(/`([\w.-]+)`/g)) {
        assert.ok(m[1] !== undefined && has(m[1]), `${title} ${row[0] ?? ''}: chart value ${m[1] ?? ''}`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 18, `${checked} chart values checked`);
});

test('every flag of the kubectl plugin is in docs/configuration.md with the command it applies to', () => {
  const root = program(() => undefined);
  const table = rows(section(configuration, '`kubectl pulltrace`'));
  const all = [
    ...root.options.map((o) => ({ o, where: 'all commands' })),
    ...root.commands.flatMap((c) => c.options.map((o) => ({ o, where: `\`${c.name()}\`` }))),
  ];
  assert.ok(root.commands.length >= 2 && all.length >= 7);
  for (const { o, where } of all) {
    const row = table.find((r) => r[0] === `\`${o.flags}\``);
    assert.ok(row !== undefined, `kubectl pulltrace: a row for \`${o.flags}\``);
    assert.equal(row[1], where, `${o.flags}: applies to`);
  }
  for (const r of table) {
    assert.ok(
      all.some(({ o }) => `\`${o.flags}\`` === r[0]),
      `${r[0] ?? ''} is documented but not a flag of the plugin`,
    );
  }
});

interface MetricRow {
  name: string;
  type: string;
  labels: string[];
}

/** Name, type and label names of what a registry exports (after one scrape). */
async function metricsOf(registry: Registry): Promise<MetricRow[]> {
  return (await registry.getMetricsAsJSON()).map((m) => ({
    name: m.name,
    type: String(m.type),
    labels: [
      ...new Set(
        (m.values as { labels: Record<string, unknown> }[]).flatMap((v) =>
          Object.keys(v.labels).filter((l) => l !== 'le'),
        ),
      ),
    ].sort(),
  }));
}

/** The publisher's counters, as the agent registers them (values do not matter here). */
const PUBLISHER: PublisherStats = {
  counts: { status: 0, events: 0, retries: 0, gone: 0, errors: 0 },
  active: () => 0,
};

test('every metric registered is in docs/metrics.md with its type and labels', async () => {
  const webhook = createWebhookMetrics({ processMetrics: false });
  // One observation of each outcome so labelled series (and their label names) exist.
  for (const outcome of ['patched', 'unchanged', 'opted_out', 'skipped', 'error', 'bad_request'] as const) {
    webhook.observe(outcome, 0.001);
  }
  const tracker = new PullTracker({ source: new FakeContainerdSource() });
  const registered = [
    ...(await metricsOf(webhook.registry)),
    ...(await metricsOf(createAgentMetrics(tracker, { processMetrics: false, publisher: PUBLISHER }))),
  ];
  assert.ok(registered.length >= 7, `${registered.length} metrics`);
  const doc = read('metrics.md');
  const table = rows(prose(doc));
  for (const m of registered) {
    const row = table.find((r) => r[0] === `\`${m.name}\``);
    assert.ok(row !== undefined, `docs/metrics.md: a row for \`${m.name}\``);
    assert.equal(row[1], m.type, `${m.name}: type`);
    assert.deepEqual(
      plain(row[2])
        .split(/[,\s]+/)
        .filter((l) => l !== '')
        .sort(),
      m.labels,
      `${m.name}: labels`,
    );
  }
  // The webhook's outcome values are explained.
  for (const outcome of ['patched', 'unchanged', 'opted_out', 'skipped', 'error', 'bad_request']) {
    assert.ok(
      table.some((r) => r[0] === `\`${outcome}\``),
      `outcome ${outcome}`,
    );
  }
  // No documented pulltrace metric that the programs do not register (process metrics aside).
  for (const r of table) {
    const name = plain(r[0]);
    if (!/^pulltrace_[a-z_]+$/.test(name)) continue;
    assert.ok(
      registered.some((m) => m.name === name),
      `${name} is documented but not registered`,
    );
  }
});

test("the process metrics' prefixes and every default metric are in docs/metrics.md", async () => {
  const doc = read('metrics.md');
  const prefixes = { webhook: 'pulltrace_webhook_', agent: 'pulltrace_node_agent_' };
  const webhook = await metricsOf(createWebhookMetrics({ processMetrics: true }).registry);
  const agent = await metricsOf(
    createAgentMetrics(new PullTracker({ source: new FakeContainerdSource() }), {
      processMetrics: true,
      publisher: PUBLISHER,
    }),
  );
  const own = new Set([
    'pulltrace_pulls',
    'pulltrace_pull_bytes_per_second',
    'pulltrace_pull_bytes_remaining',
    'pulltrace_containerd_up',
    'pulltrace_api_writes_total',
    'pulltrace_api_write_failures_total',
    'pulltrace_pods_followed',
  ]);
  const defaults = [
    ...webhook
      .filter(
        (m) =>
          m.name.startsWith(prefixes.webhook) &&
          !/_(requests_total|request_duration_seconds|patches_total)$/.test(m.name),
      )
      .map((m) => m.name.slice(prefixes.webhook.length)),
    ...agent
      .filter((m) => !own.has(m.name))
      .map((m) => {
        assert.ok(m.name.startsWith(prefixes.agent), `${m.name} carries the agent's prefix`);
        return m.name.slice(prefixes.agent.length);
      }),
  ];
  assert.ok(defaults.length >= 20, `${defaults.length} default metrics`);
  for (const p of Object.values(prefixes)) assert.ok(doc.includes(`\`${p}\``), `prefix ${p}`);
  for (const suffix of new Set(defaults))
    assert.ok(doc.includes(`\`${suffix}\``), `default metric ${suffix}`);
});

/** Every path in an mkdocs nav (a list of strings or one-key maps, nested). */
function navPaths(nav: unknown): string[] {
  if (typeof nav === 'string') return [nav];
  if (Array.isArray(nav)) return nav.flatMap(navPaths);
  if (typeof nav === 'object' && nav !== null) return Object.values(nav).flatMap(navPaths);
  return [];
}

test("every page in mkdocs.yml's nav exists, and every page is in the nav", () => {
  const config = parse(readFileSync(new URL('../mkdocs.yml', import.meta.url), 'utf8')) as {
    docs_dir?: string;
    nav?: unknown;
  };
  assert.equal(config.docs_dir, 'docs');
  const paths = navPaths(config.nav).filter((p) => !/^https?:/.test(p));
  assert.ok(paths.length >= 12, `${paths.length} pages in the nav`);
  for (const p of paths) assert.ok(existsSync(new URL(p, docsDir)), `nav page ${p} exists in docs/`);
  assert.equal(new Set(paths).size, paths.length, 'no page twice in the nav');
  for (const page of ['contract.md', 'benchmarks.md', 'status-schema.md', 'configuration.md', 'metrics.md']) {
    assert.ok(paths.includes(page), `${page} is in the nav`);
  }
  const pages = readdirSync(docsDir).filter((f) => f.endsWith('.md'));
  for (const page of pages) assert.ok(paths.includes(page), `docs/${page} is in the nav`);
  // The schema page embeds the schema file itself.
  assert.match(read('status-schema.md'), /--8<-- "status\.schema\.json"/);
  assert.ok(existsSync(new URL('status.schema.json', docsDir)));
});

/** Python-Markdown's default heading id: the text without markup, lower case, words joined by "-". */
function slug(heading: string): string {
  return heading
    .replace(/`/g, '')
    .normalize('NFKD')
    .replace(/[^\w\s-]/g, '')
    .trim()
    .toLowerCase()
    .replace(/[-\s]+/g, '-');
}

test('links between the pages point at files and headings that exist', () => {
  const pages = readdirSync(docsDir).filter((f) => f.endsWith('.md'));
  const anchors = new Map(
    pages.map((p) => [
      p,
      new Set(
        prose(read(p))
          .filter((l) => /^#{1,6} /.test(l))
          .map((l) => slug(l.replace(/^#+ /, ''))),
      ),
    ]),
  );
  let checked = 0;
  for (const page of pages) {
    for (const line of prose(read(page))) {
      for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1] ?? '';
        if (/^(https?:|mailto:)/.test(target)) continue;
        const [file = '', anchor] = target.split('#');
        const path = file === '' ? page : file;
        assert.ok(existsSync(new URL(path, docsDir)), `${page}: link to ${target}`);
        if (anchor !== undefined && path.endsWith('.md')) {
          assert.ok(anchors.get(path)?.has(anchor), `${page}: no heading #${anchor} in ${path}`);
        }
        checked++;
      }
    }
  }
  assert.ok(checked >= 20, `${checked} links checked`);
});
