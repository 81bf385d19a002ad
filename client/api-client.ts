// A typed client for linuxkitd's API over its Unix socket, for linuxkitctl and for scripts.
// Only node:http at run time: the response types come from the daemon's schemas through
// `import type`, which the compiler erases, so loading this stays fast.
import { request, type IncomingMessage } from 'node:http';
import type { DaemonStatus, StateEvent } from '../daemon/controller.js';
import type {
  ActionResponse,
  DiskResetResponse,
  HealthResponse,
  LogSource,
  LogsResponse,
} from '../daemon/api/schemas.js';

export type {
  ActionResponse,
  DaemonStatus,
  DiskResetResponse,
  HealthResponse,
  LogSource,
  LogsResponse,
  StateEvent,
};

/** The socket is missing, nobody listens on it, it may not be opened, or the daemon did not answer. */
export class DaemonUnreachableError extends Error {
  override readonly name = 'DaemonUnreachableError';
  constructor(
    readonly socketPath: string,
    /** ENOENT, ECONNREFUSED, EACCES, ETIMEDOUT, ... */
    readonly code: string,
    detail: string,
  ) {
    super(`linuxkitd is not reachable at ${socketPath}: ${detail}`);
  }
}

/** The daemon answered with an error: `error` is its stable code, `message` says what was wrong. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

export interface LinuxkitClientOptions {
  socketPath: string;
  /** How long a request may take before the daemon counts as unreachable; default 10 s. */
  timeoutMs?: number;
}

export interface EventSubscription {
  /** Stops the stream; `done` then resolves. */
  close(): void;
  /** Resolves when the stream ends (close() or the daemon ended it); rejects on errors. */
  readonly done: Promise<void>;
}

const UNREACHABLE_DETAIL: Record<string, string> = {
  ENOENT: 'no socket there (is linuxkitd running? is --socket or LINUXKIT_SOCKET right?)',
  ECONNREFUSED: 'nothing listens on it (linuxkitd is not running; the socket file is stale)',
  EACCES: 'permission denied (the socket is 0600: run as the user linuxkitd runs as)',
  EPERM: 'permission denied (the socket is 0600: run as the user linuxkitd runs as)',
  ECONNRESET: 'the connection was reset',
  ENOTSOCK: 'the path is not a socket',
};

export class LinuxkitClient {
  readonly socketPath: string;
  readonly timeoutMs: number;

  constructor({ socketPath, timeoutMs = 10_000 }: LinuxkitClientOptions) {
    this.socketPath = socketPath;
    this.timeoutMs = timeoutMs;
  }

  status(): Promise<DaemonStatus> {
    return this.json('GET', '/v1/status', [200]);
  }

  start(): Promise<ActionResponse> {
    return this.json('POST', '/v1/start', [202]);
  }

  stop(): Promise<ActionResponse> {
    return this.json('POST', '/v1/stop', [202]);
  }

  restart(): Promise<ActionResponse> {
    return this.json('POST', '/v1/restart', [202]);
  }

  /** Removes the store disk; the daemon answers 409 (ApiError) unless the builder is stopped. */
  resetDisk(): Promise<DiskResetResponse> {
    return this.json('POST', '/v1/disk/reset', [200]);
  }

  /** Resolves for healthy (200) and unhealthy (503) builders alike: look at `healthy`. */
  health(): Promise<HealthResponse> {
    return this.json('GET', '/v1/health', [200, 503]);
  }

  logs(opts: { source?: LogSource; lines?: number } = {}): Promise<LogsResponse> {
    const query = new URLSearchParams();
    if (opts.source !== undefined) query.set('source', opts.source);
    if (opts.lines !== undefined) query.set('lines', String(opts.lines));
    const qs = query.toString();
    return this.json('GET', `/v1/logs${qs ? `?${qs}` : ''}`, [200]);
  }

  /** Calls `onEvent` for each event; the first is a snapshot of the current state (`initial: true`). */
  events(onEvent: (event: StateEvent) => void): EventSubscription {
    let req: ReturnType<typeof request> | undefined;
    let closedByUs = false;
    const done = new Promise<void>((resolve, reject) => {
      req = this.open(
        'GET',
        '/v1/events',
        async (res) => {
          if (res.statusCode !== 200) return reject(await this.errorFrom(res));
          let buffered = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffered += chunk;
            for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
              const line = buffered.slice(0, newline);
              buffered = buffered.slice(newline + 1);
              if (line.trim() === '') continue;
              let event: StateEvent;
              try {
                event = JSON.parse(line) as StateEvent;
              } catch {
                req?.destroy();
                return reject(
                  new ApiError(
                    200,
                    'bad_response',
                    `linuxkitd sent an event line that is not JSON: ${line.slice(0, 200)}`,
                  ),
                );
              }
              onEvent(event);
            }
          });
          res.on('end', () => resolve());
          res.on('error', () =>
            closedByUs
              ? resolve()
              : reject(
                  new DaemonUnreachableError(
                    this.socketPath,
                    'ECONNRESET',
                    'the daemon dropped the event stream',
                  ),
                ),
          );
          res.on('close', () => resolve());
        },
        (err) => (closedByUs ? resolve() : reject(err)),
      );
      req.end();
    });
    // A caller that only uses close() must not crash the process with an unhandled rejection.
    done.catch(() => {});
    return {
      close: () => {
        closedByUs = true;
        req?.destroy();
      },
      done,
    };
  }

  private json<T>(method: 'GET' | 'POST', path: string, expected: number[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const req = this.open(
        method,
        path,
        (res) => {
          readBody(res).then((text) => {
            const status = res.statusCode ?? 0;
            let body: unknown;
            try {
              body = JSON.parse(text);
            } catch {
              return reject(
                new ApiError(
                  status,
                  'bad_response',
                  `linuxkitd answered ${method} ${path} with HTTP ${status} and a body that is not JSON`,
                ),
              );
            }
            if (expected.includes(status)) resolve(body as T);
            else reject(toApiError(status, body, `${method} ${path}`));
          }, reject);
        },
        reject,
      );
      req.end();
    });
  }

  /** Sends a request; `onError` gets a DaemonUnreachableError for socket errors and timeouts. */
  private open(
    method: 'GET' | 'POST',
    path: string,
    onResponse: (res: IncomingMessage) => void,
    onError: (err: Error) => void,
  ): ReturnType<typeof request> {
    // agent: false: one connection per request, none kept open to hold the process alive.
    const req = request({
      socketPath: this.socketPath,
      method,
      path,
      agent: false,
      headers: { accept: 'application/json' },
    });
    // The deadline covers connecting and the response head; an event stream may then idle forever.
    const timer = setTimeout(() => {
      req.destroy(
        new DaemonUnreachableError(this.socketPath, 'ETIMEDOUT', `no answer within ${this.timeoutMs} ms`),
      );
    }, this.timeoutMs);
    req.once('response', (res) => {
      clearTimeout(timer);
      onResponse(res);
    });
    req.once('close', () => clearTimeout(timer));
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err instanceof DaemonUnreachableError) return onError(err);
      const code = err.code ?? 'EUNKNOWN';
      onError(
        new DaemonUnreachableError(
          this.socketPath,
          code,
          UNREACHABLE_DETAIL[code] ?? `${code}: ${err.message}`,
        ),
      );
    });
    return req;
  }

  private async errorFrom(res: IncomingMessage): Promise<Error> {
    const text = await readBody(res);
    try {
      return toApiError(res.statusCode ?? 0, JSON.parse(text), 'GET /v1/events');
    } catch {
      return new ApiError(
        res.statusCode ?? 0,
        'bad_response',
        `linuxkitd answered GET /v1/events with HTTP ${res.statusCode}`,
      );
    }
  }
}

function toApiError(status: number, body: unknown, what: string): ApiError {
  const { error, message } = (body ?? {}) as { error?: unknown; message?: unknown };
  if (typeof error === 'string' && typeof message === 'string') return new ApiError(status, error, message);
  return new ApiError(status, 'bad_response', `linuxkitd answered ${what} with HTTP ${status}`);
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (text += chunk));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}
