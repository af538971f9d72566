// Option parsing shared by both binaries. Each binary declares its options once with
// commander (`--flag`, `PULLTRACE_*` env var, default, help stating the default) and gets a
// typed, validated config object; nothing else reads process.env.
import { InvalidArgumentError, Option, type Command } from 'commander';

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

/**
 * commander turns a boolean flag on whenever its env var is set, even to "false". Call this in
 * a preAction hook: it reads such env vars as booleans (true/false/1/0/yes/no) instead.
 */
export function readBooleanEnv(cmd: Command): void {
  for (const o of cmd.options) {
    if (o.required || o.optional || o.envVar === undefined) continue;
    const key = o.attributeName();
    if (cmd.getOptionValueSource(key) !== 'env') continue;
    const raw = (process.env[o.envVar] ?? '').trim().toLowerCase();
    if (['1', 'true', 'yes', 'on', ''].includes(raw)) cmd.setOptionValueWithSource(key, true, 'env');
    else if (['0', 'false', 'no', 'off'].includes(raw)) cmd.setOptionValueWithSource(key, false, 'env');
    else throw new InvalidArgumentError(`${o.envVar} must be true or false, got "${raw}"`);
  }
}

/** An option value read as a boolean: true/false, 1/0, yes/no, on/off (any case). */
export function parseBool(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new InvalidArgumentError(`must be true or false, got "${value}"`);
}

export interface HostPort {
  host: string;
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

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function logLevelOption(): Option {
  return option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info');
}
