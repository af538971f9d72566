// Serving certificate and key from files, reloaded when they change (cert-manager rotates
// them in place). A new pair is swapped in only once it loads as a matching pair, so a
// half-written rotation never replaces a good certificate. Connections already open keep the
// context they started with, so in-flight requests are not dropped.
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import { PulltraceError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';

/** A serving certificate (chain) and its private key, PEM. */
export interface KeyPair {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads the pair from its files and checks that it loads as a TLS context (both parse, the key
 * matches the certificate). Rejects with PulltraceError PT_TLS_LOAD, the cause attached.
 */
export async function readKeyPair(certPath: string, keyPath: string): Promise<KeyPair> {
  try {
    const [cert, key] = await Promise.all([readFile(certPath), readFile(keyPath)]);
    // Throws if either is malformed or the key does not belong to the certificate.
    createSecureContext({ cert, key });
    return { cert, key };
  } catch (err) {
    throw new PulltraceError('PT_TLS_LOAD', `${certPath}, ${keyPath}`, { cause: err });
  }
}

/** The serving pair's files and how often they are polled: the webhook's `tls` config. */
export interface CertFiles {
  /** Serving certificate, PEM, the chain allowed (--tls-cert). Required. */
  certPath: string;
  /** Its private key, PEM (--tls-key). Required. */
  keyPath: string;
  /** Time between two polls, milliseconds (--cert-reload-interval). Default 10 000, at least 100. */
  reloadIntervalMs: number;
}

/** What a CertWatcher polls, how often, and whom it tells. */
export interface CertWatcherOptions extends CertFiles {
  logger: Logger;
  /** Called with each new valid pair. */
  onChange: (pair: KeyPair, context: SecureContext) => void;
}

/** Polls the files; a poll is cheap (two small reads) and works on every volume type. */
export class CertWatcher {
  private current: KeyPair;
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  /** New pairs swapped in so far. */
  reloads = 0;
  /** Polls that could not read the files, or read a pair that does not load. */
  failures = 0;

  constructor(
    initial: KeyPair,
    private readonly opts: CertWatcherOptions,
  ) {
    this.current = initial;
  }

  /** Polls every `reloadIntervalMs` until stop(); the timer does not keep the process alive. */
  start(): void {
    this.timer = setInterval(() => void this.check(), this.opts.reloadIntervalMs);
    this.timer.unref();
  }

  /** Stops polling. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One check; exported for tests. Resolves true when a new pair was swapped in. */
  async check(): Promise<boolean> {
    if (this.polling) return false;
    this.polling = true;
    try {
      const [cert, key] = await Promise.all([readFile(this.opts.certPath), readFile(this.opts.keyPath)]);
      if (cert.equals(this.current.cert) && key.equals(this.current.key)) return false;
      let context: SecureContext;
      try {
        context = createSecureContext({ cert, key });
      } catch (err) {
        this.failures++;
        this.opts.logger.error({ err }, 'new TLS certificate or key does not load; keeping the current one');
        return false;
      }
      this.current = { cert, key };
      this.reloads++;
      this.opts.onChange(this.current, context);
      this.opts.logger.info('TLS certificate reloaded');
      return true;
    } catch (err) {
      this.failures++;
      this.opts.logger.error({ err }, 'reading TLS certificate files failed; keeping the current one');
      return false;
    } finally {
      this.polling = false;
    }
  }
}
