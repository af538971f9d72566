// Options of the programs, declared once. Each program describes its config as a tree of
// fields shaped like the config object itself (node-agent/config.ts, webhook/config.ts): each
// field is a flag, its `PULLTRACE_*` env var, its default as a user would write it, its help
// text and the parser of its text. From that one tree come the commander options (help, docs
// test) and the typed config, read once and checked as a whole: every bad field is reported
// at once in one ConfigError (PT_CONFIG_INVALID). Nothing else reads process.env.
import { InvalidArgumentError, Option, type Command, type OptionValues } from 'commander';
import { PulltraceError, errorMessage } from './errors.js';

/** `--tls-cert` → `PULLTRACE_TLS_CERT`. */
export function envName(flag: string): string {
  return `PULLTRACE_${flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
}

/**
 * An option bound to its env var. `flags` like `--listen <addr>`; the help text gets the
 * default appended by commander.
 */
export function option(flags: string, description: string): Option {
  const long = flags.split(/[ ,]+/).find((f) => f.startsWith('--'));
  if (long === undefined) throw new Error(`option ${flags} has no long flag`);
  return new Option(flags, description).env(envName(long));
}

/** An option value read as a boolean: true/false, 1/0, yes/no, on/off (any case). */
export function parseBool(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new InvalidArgumentError(`must be true or false, got "${value}"`);
}

/** A listening address. */
export interface HostPort {
  /** Interface to bind; "0.0.0.0" for all IPv4 ones. */
  host: string;
  /** TCP port; 0 lets the system choose. */
  port: number;
}

/** "0.0.0.0:8443", "[::1]:8443", ":8443" → host and port. */
export function parseHostPort(value: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m?.[3] === undefined ? NaN : Number(m[3]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`expected HOST:PORT (e.g. 0.0.0.0:8443), got "${value}"`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const DURATION_UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** Go-style durations ("30s", "1m30s", "500ms", "2h") → milliseconds. */
export function parseDuration(value: string): number {
  const text = value.trim();
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? NaN);
    consumed = re.lastIndex;
  }
  if (text === '' || consumed !== text.length || !Number.isFinite(total)) {
    throw new InvalidArgumentError(`expected a duration such as 30s, 1m30s or 500ms, got "${value}"`);
  }
  return total;
}

/** A duration in milliseconds of at least `minMs` (written as `minText` in the message). */
export function durationParser(minMs: number, minText: string): (value: string) => number {
  return (value: string) => {
    const ms = parseDuration(value);
    if (ms < minMs) throw new InvalidArgumentError(`must be at least ${minText}, got "${value}"`);
    return ms;
  };
}

/** A whole number within [min, max]. */
export function intParser(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = Number(value.trim());
    if (value.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
}

/** A finite number > 0. */
export function parsePositiveNumber(value: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a number greater than 0, got "${value}"`);
  }
  return n;
}

/** "a, b,,c" → ["a", "b", "c"]. */
export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The text as given (the `required` check is the field's, not the parser's). */
export const parseText = (value: string): string => value;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One of LOG_LEVELS. */
export function parseLogLevel(value: string): LogLevel {
  const v = value.trim();
  const level = LOG_LEVELS.find((l) => l === v);
  if (level === undefined)
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return level;
}

/**
 * One option: a leaf of a program's field tree. A flag without `<value>` is a switch: on when
 * given, and its env var read as true/false.
 */
export interface Field<T> {
  /** commander flags: `--poll-interval <duration>`, `--watch`. */
  readonly flags: string;
  /** Help text (commander appends the default and the env var). */
  readonly help: string;
  /** The default as a user would write it ("1s"); absent: the option is required. */
  readonly default?: string;
  /** The default as help and docs show it, when not `default` itself ("none"). */
  readonly defaultText?: string;
  /** Text → value; throws saying what is wrong with it. */
  readonly parse: (text: string) => T;
}

/** What a field's value may be; anything else in a config is a section of fields. */
type FieldValue = string | number | boolean | readonly string[] | ReadonlySet<string> | HostPort;
/** The keys a config type requires (optional ones are left to the component's defaults). */
type RequiredKeys<T> = { [K in keyof T]-?: T extends Record<K, unknown> ? K : never }[keyof T];
/** A config type's field tree: the same shape, a Field where the config has a value. */
export type Fields<T> = {
  readonly [K in RequiredKeys<T>]: T[K] extends FieldValue ? Field<T[K]> : Fields<T[K]>;
};

/** A bad field: which option, and what is wrong with its value. */
export interface FieldProblem {
  /** Where it goes in the config object: "tracker.pollIntervalMs". */
  path: string;
  /** "--poll-interval". */
  flag: string;
  /** "PULLTRACE_POLL_INTERVAL". */
  envVar: string;
  message: string;
}

/** The configuration is invalid: every bad field, one line each (exit code 2). */
export class ConfigError extends PulltraceError {
  readonly problems: readonly FieldProblem[];

  constructor(problems: readonly FieldProblem[]) {
    super('PT_CONFIG_INVALID', problems.map(problemLine).join('; '));
    this.name = 'ConfigError';
    this.problems = problems;
  }

  /** One line per bad field, for stderr. */
  lines(): string[] {
    return this.problems.map(problemLine);
  }
}

function problemLine(p: FieldProblem): string {
  return `${p.flag} (${p.envVar}): ${p.message}`;
}

interface FieldEntry {
  path: string;
  field: Field<unknown>;
  /** commander's key for it ("pollInterval"). */
  key: string;
  flag: string;
  envVar: string;
  isSwitch: boolean;
}

function isField(node: unknown): node is Field<unknown> {
  return (
    typeof node === 'object' && node !== null && typeof (node as { parse?: unknown }).parse === 'function'
  );
}

/** The fields of a tree in declaration order, with where each goes. */
function leaves(tree: object, prefix = ''): FieldEntry[] {
  return Object.entries(tree).flatMap(([name, node]: [string, unknown]): FieldEntry[] => {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    if (!isField(node)) return typeof node === 'object' && node !== null ? leaves(node, path) : [];
    const o = option(node.flags, node.help);
    return [
      {
        path,
        field: node,
        key: o.attributeName(),
        flag: o.long ?? node.flags,
        envVar: o.envVar ?? '',
        isSwitch: !o.required && !o.optional,
      },
    ];
  });
}

/** The commander options of a field tree, in declaration order. */
export function fieldOptions(fields: object): Option[] {
  return leaves(fields).map(({ field }) => {
    const o = option(field.flags, field.help);
    if (field.default === undefined) return o;
    // An empty default is shown as "" (commander's own rendering), any other one unquoted.
    return o.default(field.default, field.defaultText ?? (field.default === '' ? undefined : field.default));
  });
}

/** Adds a field tree's options to `cmd`. */
export function addFields(cmd: Command, fields: object): Command {
  for (const o of fieldOptions(fields)) cmd.addOption(o);
  return cmd;
}

/** A problem with one field of a tree, e.g. a kubeconfig that cannot be read at start. */
export function fieldProblem(fields: object, path: string, message: string): FieldProblem {
  const leaf = leaves(fields).find((l) => l.path === path);
  if (leaf === undefined) throw new Error(`no field ${path}`);
  return { path, flag: leaf.flag, envVar: leaf.envVar, message };
}

/** Where a value came from, as commander says: "cli", "env", "default". */
export type SourceOf = (key: string) => string | undefined;

/** A field's text, or undefined when it has none (a required field not given). */
function textOf(leaf: FieldEntry, value: unknown, source: string | undefined): string | undefined {
  if (leaf.isSwitch && source === 'env') {
    // commander turns a switch on whenever its env var is set, even to "false".
    const raw = process.env[leaf.envVar] ?? '';
    return raw.trim() === '' ? 'true' : raw;
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  return undefined;
}

/**
 * The config from commander's parsed values (`cmd.opts()`; `sourceOf`:
 * `cmd.getOptionValueSource`). Every field is parsed; throws one ConfigError naming every bad one.
 */
export function readFields<T>(
  fields: Fields<T>,
  values: OptionValues,
  sourceOf: SourceOf = () => undefined,
): T {
  const config: Record<string, unknown> = {};
  const problems: FieldProblem[] = [];
  for (const leaf of leaves(fields)) {
    const source = sourceOf(leaf.key);
    const text = textOf(leaf, values[leaf.key], source);
    const bad = (message: string) => {
      const from = source === 'env' ? ` (from ${leaf.envVar})` : '';
      problems.push({ path: leaf.path, flag: leaf.flag, envVar: leaf.envVar, message: `${message}${from}` });
    };
    if (text === undefined || (leaf.field.default === undefined && text.trim() === '')) {
      bad('is required');
      continue;
    }
    try {
      setPath(config, leaf.path, leaf.field.parse(text));
    } catch (err) {
      bad(errorMessage(err));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  // Built from Fields<T>, which has one field for every key T requires.
  return config as T;
}

/** The config of a parsed command: readFields with the command's value sources. */
export function readCommand<T>(cmd: Command, fields: Fields<T>): T {
  return readFields(fields, cmd.opts(), (key) => cmd.getOptionValueSource(key));
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const names = path.split('.');
  const last = names.pop() ?? path;
  let node = target;
  for (const name of names) {
    const next = node[name];
    if (typeof next === 'object' && next !== null) node = next as Record<string, unknown>;
    else {
      const created: Record<string, unknown> = {};
      node[name] = created;
      node = created;
    }
  }
  node[last] = value;
}

/** The `--log-level` field both programs share. */
export const LOG_LEVEL_FIELD: Field<LogLevel> = {
  flags: '--log-level <level>',
  help: `log level: ${LOG_LEVELS.join(', ')}`,
  default: 'info',
  parse: parseLogLevel,
};
