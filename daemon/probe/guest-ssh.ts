// Runs one command in the guest over SSH (ssh2), trusting only the pinned host key, under one
// overall deadline. ssh2 accepts any host key unless `hostVerifier` is set, and its
// `readyTimeout` covers only the handshake, so both are handled here.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { Client, type ConnectConfig } from 'ssh2';
import { publicKeyBlob } from '../keys/builder-keys.js';

export interface GuestSshTarget {
  host: string;
  port: number;
  username: string;
  /** The client private key (OpenSSH format). */
  privateKey: string | Buffer;
  /** The pinned host key as an OpenSSH public key line. */
  hostPublicKeyLine: string;
}

export interface GuestCommandResult {
  stdout: string;
  /** stdout as the bytes it was, for a binary protocol. */
  stdoutBytes: Buffer;
  stderr: string;
  code: number | null;
  latencyMs: number;
}

export class HostKeyMismatchError extends Error {
  override readonly name = 'HostKeyMismatchError';
  constructor(
    readonly expectedFingerprint: string,
    readonly presentedFingerprint: string,
    target: string,
  ) {
    super(
      `host key mismatch for ${target}: the guest presented ${presentedFingerprint} but ${expectedFingerprint} is pinned; ` +
        'refusing to connect (a different VM may be answering on this port)',
    );
  }
}

export class GuestSshTimeoutError extends Error {
  override readonly name = 'GuestSshTimeoutError';
}

/** "SHA256:<base64>" as ssh-keygen -l prints it. */
export function keyFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function runGuestCommand(
  target: GuestSshTarget,
  command: string,
  opts: {
    deadlineMs: number;
    stdin?: string | Buffer;
    /**
     * Keep stdin open after `stdin` until this says the output so far is complete (a protocol
     * exchange: a forwarder may stop copying the answer once its input ends).
     */
    endStdinWhen?: (stdoutSoFar: Buffer) => boolean;
    /** A connection to the target already open (its banner unread); otherwise one is made. */
    sock?: Socket;
  },
): Promise<GuestCommandResult> {
  const where = `${target.username}@${target.host}:${target.port}`;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const client = new Client();
    let mismatch: HostKeyMismatchError | null = null;
    let settled = false;
    const finish = (err: Error | null, result?: GuestCommandResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      client.end();
      client.destroy();
      if (err) reject(err);
      else resolve(result!);
    };
    const deadline = setTimeout(
      () =>
        finish(
          new GuestSshTimeoutError(
            `no answer from ${where} to ${JSON.stringify(command)} within ${opts.deadlineMs} ms`,
          ),
        ),
      opts.deadlineMs,
    );
    client.on('error', (err) => finish(mismatch ?? new Error(`ssh to ${where} failed: ${err.message}`)));
    client.on('close', () =>
      finish(mismatch ?? new Error(`ssh connection to ${where} closed before the command finished`)),
    );
    client.on('ready', () => {
      client.exec(command, (err, channel) => {
        if (err)
          return finish(new Error(`could not run ${JSON.stringify(command)} on ${where}: ${err.message}`));
        const stdout: Buffer[] = [];
        let stderr = '';
        let code: number | null = null;
        let stdinOpen = opts.endStdinWhen !== undefined;
        channel.on('data', (d: Buffer) => {
          stdout.push(d);
          if (stdinOpen && opts.endStdinWhen!(Buffer.concat(stdout))) {
            stdinOpen = false;
            channel.end();
          }
        });
        channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        channel.on('exit', (c: number | null) => (code = c));
        channel.on('close', () =>
          finish(null, {
            stdout: Buffer.concat(stdout).toString('utf8'),
            stdoutBytes: Buffer.concat(stdout),
            stderr,
            code,
            latencyMs: performance.now() - started,
          }),
        );
        if (stdinOpen) channel.write(opts.stdin ?? '');
        else if (opts.stdin !== undefined) channel.end(opts.stdin);
        else channel.end();
      });
    });
    client.connect(
      pinnedConnectConfig(target, {
        sock: opts.sock,
        readyTimeout: opts.deadlineMs,
        onMismatch: (err) => (mismatch = err),
      }),
    );
    // Many small messages in turn: without this each waits for the last one's ACK (Nagle).
    client.setNoDelay(true);
  });
}

/**
 * ssh2's connect settings for `target`, trusting only its pinned host key: another key ends the
 * handshake, and `onMismatch` gets the error to report (ssh2's own only says it was refused).
 */
export function pinnedConnectConfig(
  target: GuestSshTarget,
  opts: { sock?: Socket; readyTimeout: number; onMismatch: (err: HostKeyMismatchError) => void },
): ConnectConfig {
  const pinned = publicKeyBlob(target.hostPublicKeyLine);
  return {
    sock: opts.sock,
    host: target.host,
    port: target.port,
    username: target.username,
    privateKey: target.privateKey,
    readyTimeout: opts.readyTimeout,
    // Only ed25519 is ever pinned; asking for it avoids being offered another key type.
    algorithms: { serverHostKey: ['ssh-ed25519'] },
    hostVerifier: (presented: Buffer) => {
      if (presented.equals(pinned)) return true;
      opts.onMismatch(
        new HostKeyMismatchError(
          keyFingerprint(pinned),
          keyFingerprint(presented),
          `${target.username}@${target.host}:${target.port}`,
        ),
      );
      return false;
    },
  };
}
