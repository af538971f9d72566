// The webhook's configuration: one typed object shaped like the chart's `webhook` values, each
// slice the very type the component it configures takes. Read once from flags and PULLTRACE_*
// env vars (common/options.ts), every bad field reported at once.
import { Command, type OptionValues } from 'commander';
import type { LogConfig } from '../common/logging.js';
import type { MetricsConfig } from '../common/metrics-server.js';
import {
  LOG_LEVEL_FIELD,
  addFields,
  durationParser,
  parseHostPort,
  parseList,
  parseText,
  readFields,
  type Fields,
  type HostPort,
  type SourceOf,
} from '../common/options.js';
import type { MutateOptions } from './mutate.js';
import type { CertFiles } from './tls.js';

/** The admission server's own listener. */
export interface ServerConfig {
  /** HTTPS listener for /mutate (--listen). Default 0.0.0.0:8443. */
  listen: HostPort;
}

/** Everything the webhook is told; docs/configuration.md documents each flag. */
export interface WebhookConfig {
  /** Where admission requests are served. */
  server: ServerConfig;
  /** The serving certificate and key files, polled for renewals: CertWatcher's own settings. */
  tls: CertFiles;
  /** The admission's settings, handed to admit() as they are. */
  mutate: MutateOptions;
  /** The plain-HTTP side server: /metrics and the probes. Default listen 0.0.0.0:9090. */
  metrics: MetricsConfig;
  /** Default level info. */
  log: LogConfig;
}

/** Every flag of the webhook, where its value goes, its default and its parser. */
export const WEBHOOK_FIELDS: Fields<WebhookConfig> = {
  server: {
    listen: {
      flags: '--listen <host:port>',
      help: 'HTTPS listener for /mutate',
      default: '0.0.0.0:8443',
      parse: parseHostPort,
    },
  },
  tls: {
    certPath: {
      flags: '--tls-cert <path>',
      help: 'serving certificate (PEM); reloaded when it changes (required)',
      parse: parseText,
    },
    keyPath: {
      flags: '--tls-key <path>',
      help: 'serving key (PEM); reloaded when it changes (required)',
      parse: parseText,
    },
    reloadIntervalMs: {
      flags: '--cert-reload-interval <duration>',
      help: 'how often to check the certificate files for changes (at least 100ms)',
      default: '10s',
      parse: durationParser(100, '100ms'),
    },
  },
  mutate: {
    readinessGateNamespaces: {
      flags: '--readiness-gate-namespaces <list>',
      help: 'comma-separated namespaces whose pods all get the readiness gate',
      default: '',
      defaultText: 'none',
      parse: (text) => new Set(parseList(text)),
    },
  },
  metrics: {
    listen: {
      flags: '--metrics-listen <host:port>',
      help: 'plain-HTTP listener for /metrics, /healthz, /readyz',
      default: '0.0.0.0:9090',
      parse: parseHostPort,
    },
  },
  log: { level: LOG_LEVEL_FIELD },
};

/** The webhook's command line: every flag with its PULLTRACE_* env var and default. */
export function webhookCommand(): Command {
  return addFields(
    new Command('pulltrace-webhook').description(
      'Mutating admission webhook of pulltrace: labels new pods for tracking and adds the opt-in ' +
        'pulltrace.io/ImagesPulled readiness gate. Never blocks a pod.',
    ),
    WEBHOOK_FIELDS,
  );
}

/**
 * The config from the parsed command line (`cmd.opts()`, and `cmd.getOptionValueSource` when
 * there is a command). Throws ConfigError (PT_CONFIG_INVALID) naming every bad field.
 */
export function webhookConfig(values: OptionValues, sourceOf?: SourceOf): WebhookConfig {
  return readFields<WebhookConfig>(WEBHOOK_FIELDS, values, sourceOf);
}
