// The daemon's logger: pino JSON to a size-rotated file in the state directory, and to stdout
// when running in the foreground (launchd/systemd capture it too). Key material never reaches a log.
import { pino, type Logger } from 'pino';
import { RotatingFile } from './rotating-file.js';

/** Field names whose values are secrets wherever they appear in a log object. */
export const REDACTED_PATHS = [
  'privateKey',
  '*.privateKey',
  'key',
  '*.key',
  'passphrase',
  '*.passphrase',
  'hostKey',
  '*.hostKey',
  'authorization',
  '*.authorization',
];

const PRIVATE_KEY_RE = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g;

/** Scrubs private key blocks from free text (messages, stderr tails) before they are logged. */
export function scrubSecrets(text: string): string {
  return text.replace(PRIVATE_KEY_RE, '[private key redacted]');
}

export interface DaemonLoggerOptions {
  file: string;
  foreground: boolean;
  level?: string;
  maxBytes?: number;
  keep?: number;
}

export function createDaemonLogger(opts: DaemonLoggerOptions): Logger {
  const file = new RotatingFile({
    path: opts.file,
    maxBytes: opts.maxBytes ?? 5 * 1024 * 1024,
    keep: opts.keep ?? 3,
  });
  const streams: pino.StreamEntry[] = [{ stream: file }];
  if (opts.foreground) streams.push({ stream: process.stdout });
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as typeof args;
          return method.apply(this, scrubbed);
        },
      },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.multistream(streams),
  );
}
