// One root logger per process; modules take `logger.child({ component })`.
import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from './options.js';

export type { Logger };

/** The `log` slice of a program's config. */
export interface LogConfig {
  /** Least level written (--log-level). Default info. */
  level: LogLevel;
}

export function createLogger(name: string, level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      name,
      level,
      // Admission requests may carry secrets in env or annotations; never log them.
      redact: { paths: ['*.env', '*.annotations', 'req.headers.authorization'], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** For tests: a logger that writes nothing. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
