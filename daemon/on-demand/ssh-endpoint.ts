// The builder's SSH endpoint in on-demand mode: the daemon listens on 127.0.0.1:<sshPort>
// (never another address) and forwards each connection to the guest's forwarded port. A
// connection that comes while the VM is off or booting is accepted and held, its bytes kept (and
// its close noticed), until the VM is ready, then spliced through: Nix's ssh sees a slow
// connect, never a refused one. Held connections end when the wait passes connectTimeoutMs or
// when the supervisor gives up on the boot (failHeld). The supervisor learns of each new
// connection (it wakes the builder) and of every change of the counts (the idle stop).
import * as net from 'node:net';
import type { ConnectionCounts } from './demand.js';

export interface EndpointListener {
  /** A connection arrived; `by` says from where. */
  connection(by: string): void;
  /** Held or open connections changed. */
  changed(): void;
  /** Held connections were closed without reaching the guest. */
  heldClosed(count: number, reason: string): void;
  /** Listening works again, or binding failed (null: no problem). */
  listenProblem(message: string | null): void;
}

export interface SshEndpointOptions {
  connectTimeoutMs: () => number;
  now: () => number;
  listener: EndpointListener;
  /** How often a port that is in use is tried again (ms). */
  rebindIntervalMs?: number;
}

interface Held {
  socket: net.Socket;
  timer: NodeJS.Timeout;
  /** What the client sent while held (ssh sends its banner first), for the guest. */
  bytes: Buffer[];
  keep: (chunk: Buffer) => void;
}

export const ENDPOINT_HOST = '127.0.0.1';

export class SshEndpoint {
  private server: net.Server | null = null;
  private port: number | null = null;
  private rebindTimer: NodeJS.Timeout | null = null;
  private target: number | null = null;
  private readonly held = new Set<Held>();
  private readonly open = new Set<net.Socket>();
  private lastActivityAt: number | null = null;

  constructor(private readonly opts: SshEndpointOptions) {}

  /** Listens on 127.0.0.1:`port`, or stops listening (null); a port in use is tried again. */
  async listenOn(port: number | null): Promise<void> {
    if (port === this.port) return;
    await this.stopListening('the builder is no longer on demand');
    this.port = port;
    if (port !== null) await this.bind(port);
  }

  get listeningPort(): number | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : null;
  }

  counts(): ConnectionCounts {
    return { held: this.held.size, open: this.open.size, lastActivityAt: this.lastActivityAt };
  }

  /** The guest answers on 127.0.0.1:`port` (null: not ready); held connections go through now. */
  ready(port: number | null): void {
    this.target = port;
    if (port === null) return;
    for (const h of [...this.held]) {
      this.release(h);
      this.splice(h.socket, port, h.bytes);
    }
  }

  /** Closes every held connection; returns how many there were. */
  failHeld(reason: string): number {
    const n = this.held.size;
    for (const h of [...this.held]) {
      this.release(h);
      h.socket.destroy();
    }
    if (n > 0) this.opts.listener.heldClosed(n, reason);
    return n;
  }

  /** Stops listening and closes every connection, held or forwarded. */
  async close(): Promise<void> {
    await this.stopListening('the daemon is shutting down');
    for (const s of this.open) s.destroy();
  }

  private async bind(port: number): Promise<void> {
    const server = net.createServer((s) => this.accept(s));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: ENDPOINT_HOST, port, exclusive: true }, () => resolve());
      });
    } catch (err) {
      server.close();
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === 'EADDRINUSE' ? 'it is in use (a VM from always mode, or another program)' : e.message;
      this.opts.listener.listenProblem(`cannot listen on ${ENDPOINT_HOST}:${port}: ${why}; trying again`);
      this.rebindTimer = setTimeout(() => {
        this.rebindTimer = null;
        if (this.port === port) void this.bind(port);
      }, this.opts.rebindIntervalMs ?? 1000);
      return;
    }
    if (this.port !== port) {
      server.close();
      return;
    }
    this.server = server;
    this.opts.listener.listenProblem(null);
  }

  private async stopListening(reason: string): Promise<void> {
    if (this.rebindTimer) clearTimeout(this.rebindTimer);
    this.rebindTimer = null;
    const server = this.server;
    this.server = null;
    this.failHeld(reason);
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    this.lastActivityAt = this.opts.now();
    const by = `a connection from ${socket.remoteAddress}:${socket.remotePort}`;
    if (this.target !== null) {
      this.splice(socket, this.target, []);
      this.opts.listener.connection(by);
      return;
    }
    const timeoutMs = this.opts.connectTimeoutMs();
    const bytes: Buffer[] = [];
    const h: Held = {
      socket,
      bytes,
      keep: (chunk) => bytes.push(chunk),
      timer: setTimeout(() => {
        this.release(h);
        socket.destroy();
        this.opts.listener.heldClosed(
          1,
          `the builder was not ready within ${Math.round(timeoutMs / 1000)} s (onDemand.connectTimeoutMs)`,
        );
        this.activity();
      }, timeoutMs),
    };
    this.held.add(h);
    socket.on('data', h.keep);
    // A client that gives up while held is simply gone.
    socket.once('close', () => {
      if (this.held.has(h)) {
        this.release(h);
        this.activity();
      }
    });
    this.opts.listener.connection(by);
  }

  private release(h: Held): void {
    clearTimeout(h.timer);
    h.socket.pause();
    h.socket.off('data', h.keep);
    this.held.delete(h);
  }

  private splice(client: net.Socket, port: number, kept: Buffer[]): void {
    if (client.destroyed) return;
    client.pause();
    this.open.add(client);
    const guest = net.connect({ host: ENDPOINT_HOST, port });
    guest.setNoDelay(true);
    const end = () => {
      client.destroy();
      guest.destroy();
      if (this.open.delete(client)) this.activity();
    };
    guest.on('error', end);
    guest.on('close', end);
    client.on('close', end);
    guest.once('connect', () => {
      for (const chunk of kept) guest.write(chunk);
      client.pipe(guest);
      guest.pipe(client);
    });
    this.opts.listener.changed();
  }

  private activity(): void {
    this.lastActivityAt = this.opts.now();
    this.opts.listener.changed();
  }
}
