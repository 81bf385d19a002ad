// The builder's SSH port on the host: a TCP listener on 127.0.0.1 whose every connection is
// carried into the guest over hyperkit's virtio-sock `connect` socket (guest port 22), where a
// vsock listener hands it to sshd. No helper runs on the host besides the daemon, none in the
// guest besides that listener, and nothing is reachable from other machines.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { GUEST_VSOCK_SSH_PORT } from '../../image/guest-contract.js';
import { GUEST_CID, vsockConnectHeader } from './args.js';

export interface VsockBridgeOptions {
  /** The TCP port on 127.0.0.1 (VmSpec.sshPort). */
  port: number;
  /** hyperkit's `<vsock path>/connect` Unix socket. */
  connectSocket: string;
  guestCid?: number;
  /** The guest's vsock port that serves SSH. Default GUEST_VSOCK_SSH_PORT (22). */
  guestPort?: number;
  log?: (msg: string, obj?: Record<string, unknown>) => void;
}

/** Always loopback: the builder's SSH must never be reachable from another machine. */
export const BRIDGE_HOST = '127.0.0.1';

export class VsockBridge {
  /** Each carried connection: the client's TCP socket and its Unix socket into hyperkit. */
  private readonly pairs = new Set<[Socket, Socket]>();
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly server: Server,
    private readonly header: string,
    private readonly opts: VsockBridgeOptions,
  ) {
    server.on('connection', (tcp) => this.carry(tcp));
  }

  /** Listens on 127.0.0.1:port; rejects with the port in the message when it is taken. */
  static listen(opts: VsockBridgeOptions): Promise<VsockBridge> {
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
      return Promise.reject(new Error(`sshPort must be an integer in 1..65535, got ${opts.port}`));
    }
    let header: string;
    try {
      header = vsockConnectHeader(opts.guestCid ?? GUEST_CID, opts.guestPort ?? GUEST_VSOCK_SSH_PORT);
    } catch (err) {
      return Promise.reject(err);
    }
    // noDelay: SSH's small messages in turn must not wait for ACKs (Nagle) on the way back.
    const server = createServer({ pauseOnConnect: true, noDelay: true });
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'it is already in use' : err.message;
        reject(new Error(`cannot listen for SSH on ${BRIDGE_HOST}:${opts.port}: ${why}`, { cause: err }));
      });
      server.listen({ host: BRIDGE_HOST, port: opts.port, exclusive: true }, () => {
        server.removeAllListeners('error');
        // A failure after listening (rare: EMFILE on accept) must not crash the daemon.
        server.on('error', (err) => opts.log?.('SSH bridge listener error', { error: err.message }));
        resolve(new VsockBridge(server, header, opts));
      });
    });
  }

  get address(): { host: string; port: number } {
    const a = this.server.address();
    return typeof a === 'object' && a
      ? { host: a.address, port: a.port }
      : { host: BRIDGE_HOST, port: this.opts.port };
  }

  /** Connections being carried right now. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Stops listening and cuts every carried connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const [tcp, guest] of this.pairs) {
        tcp.destroy();
        guest.destroy();
      }
    });
    return this.closing;
  }

  private carry(tcp: Socket): void {
    if (this.closing) {
      tcp.destroy();
      return;
    }
    const guest = createConnection({ path: this.opts.connectSocket });
    const pair: [Socket, Socket] = [tcp, guest];
    this.pairs.add(pair);
    const fail = (err?: Error) => {
      if (err) this.opts.log?.('SSH bridge connection failed', { error: err.message });
      tcp.destroy();
      guest.destroy();
    };
    let closed = 0;
    const onClose = () => {
      if (++closed === 2) this.pairs.delete(pair);
    };
    tcp.once('close', onClose);
    guest.once('close', onClose);
    tcp.on('error', () => fail());
    // Before the guest is up there is no `connect` socket, or the guest refuses the port and
    // hyperkit closes it: the client sees its connection closed, which a probe reports as not ready.
    guest.on('error', (err) => fail(err));
    // The client gave up before the guest answered.
    tcp.once('close', () => {
      if (guest.connecting) guest.destroy();
    });
    guest.once('connect', () => {
      // One write: hyperkit reads the header with a single read(2) of exactly 18 bytes.
      guest.write(this.header);
      // The client's first bytes (its SSH banner) waited in the paused socket until now. Each
      // side's end is passed on, so nothing still buffered is cut off.
      tcp.pipe(guest);
      guest.pipe(tcp);
      tcp.resume();
    });
  }
}
