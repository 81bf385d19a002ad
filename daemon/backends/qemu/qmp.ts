// A small client for QEMU's machine protocol: newline-delimited JSON over a Unix socket.
// Replies come in command order; events may arrive between a command and its reply.
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

export interface QmpVersion {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  override readonly name = 'QmpError';
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
  }
}

interface Pending {
  id: number;
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export interface QmpConnectOptions {
  /** Bound on connecting, the greeting and capability negotiation together. */
  timeoutMs: number;
  /** Attached before the handshake, so no event is missed between connect and a later `on`. */
  onEvent?: (event: QmpEvent) => void;
}

/**
 * Emits 'event' (QmpEvent) for every asynchronous QMP event and 'close' (Error | undefined)
 * once, when the connection ends for any reason.
 */
export class QmpClient extends EventEmitter {
  private buffer = '';
  private readonly pending: Pending[] = [];
  private nextId = 1;
  private closedWith: Error | null = null;
  private greeted: ((version: QmpVersion) => void) | null = null;
  private _version: QmpVersion | null = null;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.onClose(err));
    socket.on('close', () => this.onClose());
  }

  /** QEMU's version from the greeting. */
  get version(): QmpVersion {
    if (this._version === null) throw new Error('QMP greeting not received yet');
    return this._version;
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  static connect(path: string, opts: QmpConnectOptions): Promise<QmpClient> {
    return new Promise<QmpClient>((resolve, reject) => {
      const socket = createConnection({ path });
      const client = new QmpClient(socket);
      if (opts.onEvent) client.on('event', opts.onEvent);
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new Error(`QMP at ${path} did not greet within ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
      client.once('close', (err?: Error) =>
        fail(
          new Error(`QMP at ${path} closed during the handshake${err ? `: ${err.message}` : ''}`, {
            cause: err,
          }),
        ),
      );
      client.greeted = (version) => {
        client._version = version;
        client.execute('qmp_capabilities').then(
          () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(client);
          },
          (err: Error) => fail(err),
        );
      };
    });
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedWith !== null) {
      return Promise.reject(
        new Error(`QMP connection closed; cannot run ${command}`, { cause: this.closedWith }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.push({ id, command, resolve: resolve as (v: unknown) => void, reject });
      const message: Record<string, unknown> = { execute: command, id };
      if (args !== undefined) message.arguments = args;
      this.socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  async queryStatus(): Promise<{ running: boolean; status: string }> {
    const r = await this.execute<{ running: boolean; status: string }>('query-status');
    return { running: r.running, status: r.status };
  }

  /** Closes the connection; pending commands reject. Resolves once the socket is closed. */
  close(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      // QEMU closes its side on EOF; do not wait on a peer that never does.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  /** Lets the process exit while this connection is open. */
  unref(): void {
    this.socket.unref();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line !== '') this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.socket.destroy(new Error(`QMP sent a line that is not JSON: ${line.slice(0, 120)}`));
      return;
    }
    if ('QMP' in msg) {
      const greeting = msg.QMP as { version: QmpVersion };
      const greeted = this.greeted;
      this.greeted = null;
      greeted?.(greeting.version);
      return;
    }
    if (typeof msg.event === 'string') {
      this.emit('event', {
        event: msg.event,
        data: msg.data as QmpEvent['data'],
        timestamp: msg.timestamp as QmpEvent['timestamp'],
      } satisfies QmpEvent);
      return;
    }
    if ('return' in msg || 'error' in msg) {
      // Match by the id we sent; a reply without one (e.g. to unparsable input) is the oldest.
      const index = typeof msg.id === 'number' ? this.pending.findIndex((p) => p.id === msg.id) : 0;
      if (index < 0 || this.pending.length === 0) return;
      const [p] = this.pending.splice(index, 1);
      if ('error' in msg) {
        const e = msg.error as { class?: string; desc?: string };
        p.reject(new QmpError(p.command, e.class ?? 'GenericError', e.desc ?? 'no description'));
      } else {
        p.resolve(msg.return);
      }
    }
  }

  private onClose(err?: Error): void {
    if (this.closedWith !== null) return;
    this.closedWith = err ?? new Error('QMP connection closed');
    this.socket.destroy();
    for (const p of this.pending.splice(0)) {
      p.reject(
        new Error(`QMP connection closed before the reply to ${p.command}`, { cause: this.closedWith }),
      );
    }
    this.emit('close', err);
  }
}
