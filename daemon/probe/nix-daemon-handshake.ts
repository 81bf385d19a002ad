// The opening of Nix's worker protocol, as ssh-ng starts every remote build: over SSH the probe
// runs `nix-daemon --stdio` (in the guest, the forwarder to its resident nix-daemon) and exchanges
// the handshake. So "Nix answers" is the daemon a build will talk to answering, at the cost of a
// fork in the guest instead of a Nix process start (~0.2 s instead of ~0.75 s under tcg).
//
// Wire format (src/libstore/worker-protocol.hh, daemon.cc): unsigned 64-bit little-endian numbers;
// a string is its length, its bytes, and zeros up to a multiple of 8.
//   client → WORKER_MAGIC_1, its protocol version, CPU affinity (0: none), reserveSpace (0)
//   server → WORKER_MAGIC_2, its protocol version, [its Nix version, when both are ≥ 1.33],
//            then log messages ending with STDERR_LAST
// The client side is fixed, so it is sent at once; the input is closed once the whole reply is in
// (a forwarder may stop copying the reply when its input ends), and the daemon's worker then
// reads the end of input where the next operation would be, and exits.

const WORKER_MAGIC_1 = 0x6e697863n;
const WORKER_MAGIC_2 = 0x6478696fn;
const STDERR_LAST = 0x616c7473n;
const STDERR_ERROR = 0x63787470n;
/** The version this client speaks: after the Nix version string (1.33), before feature negotiation (1.38). */
const CLIENT_VERSION = (1 << 8) | 34;

/** The command the probe runs in the guest: what ssh-ng runs. */
export const NIX_DAEMON_COMMAND = 'nix-daemon --stdio';

function u64(n: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** The client's whole side of the handshake. */
export function handshakeRequest(): Buffer {
  return Buffer.concat([u64(WORKER_MAGIC_1), u64(CLIENT_VERSION), u64(0), u64(0)]);
}

export interface HandshakeReply {
  /** The daemon's protocol version, "1.34". */
  protocol: string;
  /** The daemon's Nix version when it says (protocol 1.33 and later), else null. */
  nixVersion: string | null;
}

/** The reply ended before it was whole: more bytes may still come. */
export class TruncatedReplyError extends Error {
  override readonly name = 'TruncatedReplyError';
}

/** Whether `data` holds a whole reply (or a wrong one, which more bytes will not put right). */
export function replyComplete(data: Buffer): boolean {
  try {
    parseHandshakeReply(data);
    return true;
  } catch (err) {
    return !(err instanceof TruncatedReplyError);
  }
}

class Reader {
  private at = 0;
  constructor(private readonly data: Buffer) {}
  u64(what: string): bigint {
    if (this.at + 8 > this.data.length)
      throw new TruncatedReplyError(
        `the nix-daemon's handshake ended before ${what} (${this.data.length} bytes)`,
      );
    const v = this.data.readBigUInt64LE(this.at);
    this.at += 8;
    return v;
  }
  string(what: string): string {
    const len = Number(this.u64(`the length of ${what}`));
    if (len > 4096) throw new Error(`the nix-daemon's handshake announced ${what} of ${len} bytes`);
    if (this.at + len > this.data.length)
      throw new TruncatedReplyError(
        `the nix-daemon's handshake ended inside ${what} (${len} bytes announced)`,
      );
    const s = this.data.toString('utf8', this.at, this.at + len);
    this.at += len + ((8 - (len % 8)) % 8);
    return s;
  }
}

/** The daemon's side, read from everything it wrote; a clear error names what was wrong. */
export function parseHandshakeReply(data: Buffer): HandshakeReply {
  const r = new Reader(data);
  const magic = r.u64('its magic number');
  if (magic !== WORKER_MAGIC_2) {
    const text = data.toString('utf8').trim().slice(0, 200);
    throw new Error(
      `the nix-daemon answered with 0x${magic.toString(16)}, not the worker protocol's magic number${/^[\x20-\x7e\s]+$/.test(text) ? `: ${JSON.stringify(text)}` : ''}`,
    );
  }
  const version = Number(r.u64('its protocol version'));
  const major = version >> 8;
  const minor = version & 0xff;
  if (major !== 1) throw new Error(`the nix-daemon speaks protocol ${major}.${minor}; 1.x is expected`);
  const nixVersion = minor >= 33 ? r.string('its Nix version') : null;
  for (;;) {
    const message = r.u64('the end of its log messages');
    if (message === STDERR_LAST) break;
    if (message === STDERR_ERROR)
      throw new Error('the nix-daemon refused the connection (an error in its handshake)');
    throw new Error(
      `the nix-daemon sent log message 0x${message.toString(16)} in its handshake; only the end mark was expected`,
    );
  }
  return { protocol: `${major}.${minor}`, nixVersion };
}
