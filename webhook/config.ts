// The webhook's options: flags with PULLTRACE_* env equivalents, parsed once, validated.
import { Command } from 'commander';
import {
  logLevelOption,
  option,
  parseDuration,
  parseHostPort,
  parseList,
  type HostPort,
  type LogLevel,
} from '../common/options.js';

export interface WebhookConfig {
  listen: HostPort;
  tlsCert: string;
  tlsKey: string;
  metricsListen: HostPort;
  readinessGateNamespaces: string[];
  certReloadIntervalMs: number;
  logLevel: LogLevel;
}

export function webhookCommand(): Command {
  return new Command('pulltrace-webhook')
    .description(
      'Mutating admission webhook of pulltrace: labels new pods for tracking and adds the opt-in ' +
        'pulltrace.io/ImagesPulled readiness gate. Never blocks a pod.',
    )
    .addOption(
      option('--listen <host:port>', 'HTTPS listener for /mutate, /healthz, /readyz')
        .default(parseHostPort('0.0.0.0:8443'), '0.0.0.0:8443')
        .argParser(parseHostPort),
    )
    .addOption(option('--tls-cert <path>', 'serving certificate (PEM); reloaded when it changes (required)'))
    .addOption(option('--tls-key <path>', 'serving key (PEM); reloaded when it changes (required)'))
    .addOption(
      option('--metrics-listen <host:port>', 'plain-HTTP listener for /metrics, /healthz, /readyz')
        .default(parseHostPort('0.0.0.0:9090'), '0.0.0.0:9090')
        .argParser(parseHostPort),
    )
    .addOption(
      option(
        '--readiness-gate-namespaces <list>',
        'comma-separated namespaces whose pods all get the readiness gate',
      )
        .default([], 'none')
        .argParser(parseList),
    )
    .addOption(
      option('--cert-reload-interval <duration>', 'how often to check the certificate files for changes')
        .default(10_000, '10s')
        .argParser(parseDuration),
    )
    .addOption(logLevelOption());
}

interface RawOptions {
  listen: HostPort;
  tlsCert?: string;
  tlsKey?: string;
  metricsListen: HostPort;
  readinessGateNamespaces: string[];
  certReloadInterval: number;
  logLevel: LogLevel;
}

export function webhookConfig(raw: RawOptions): WebhookConfig {
  if (raw.tlsCert === undefined || raw.tlsCert === '') throw new Error('--tls-cert is required');
  if (raw.tlsKey === undefined || raw.tlsKey === '') throw new Error('--tls-key is required');
  if (raw.certReloadInterval < 100) throw new Error('--cert-reload-interval must be at least 100ms');
  return {
    listen: raw.listen,
    tlsCert: raw.tlsCert,
    tlsKey: raw.tlsKey,
    metricsListen: raw.metricsListen,
    readinessGateNamespaces: raw.readinessGateNamespaces,
    certReloadIntervalMs: raw.certReloadInterval,
    logLevel: raw.logLevel,
  };
}
