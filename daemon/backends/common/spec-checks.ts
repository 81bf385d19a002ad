// The VmSpec checks that mean the same under every backend. What differs (the archs and
// accelerators a hypervisor takes, the characters its option parser cannot carry, which socket
// is the longest) stays in each backend's args.ts.
import { isAbsolute } from 'node:path';
import type { VmSpec } from '../../backend.js';
import { unixSocketPathLimit } from '../../fs/unix-socket-path.js';

/** cpus, memory and the SSH port. */
export function checkVmSize(spec: Pick<VmSpec, 'cpus' | 'memoryMiB' | 'sshPort'>): void {
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1) {
    throw new Error(`cpus must be an integer >= 1, got ${spec.cpus}`);
  }
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 128) {
    throw new Error(`memoryMiB must be an integer >= 128, got ${spec.memoryMiB}`);
  }
  if (!Number.isInteger(spec.sshPort) || spec.sshPort < 1 || spec.sshPort > 65535) {
    throw new Error(`sshPort must be an integer in 1..65535, got ${spec.sshPort}`);
  }
}

/**
 * An absolute path that holds none of `lineBreaks` (by default NUL and newline; a backend may
 * refuse more, e.g. carriage return).
 */
export function requireAbsolutePath(
  field: string,
  value: unknown,
  lineBreaks: RegExp = /[\0\n]/,
): asserts value is string {
  if (typeof value !== 'string' || !isAbsolute(value)) {
    throw new Error(`${field} must be an absolute path, got ${JSON.stringify(value)}`);
  }
  if (lineBreaks.test(value)) {
    throw new Error(`${field} must not contain NUL or newline characters, got ${JSON.stringify(value)}`);
  }
}

/** Re-exported for the backends, which name every spec limit from this file. */
export { unixSocketPathLimit };

/** Throws when `socket`, the longest socket path in the state directory, is too long to bind. */
export function checkSocketPathLength(socket: string, platform: NodeJS.Platform): void {
  const limit = unixSocketPathLimit(platform);
  const bytes = Buffer.byteLength(socket);
  if (bytes > limit) {
    throw new Error(
      `stateDir is too long for a Unix socket: ${socket} is ${bytes} bytes, ` +
        `the limit on ${platform} is ${limit}; choose a shorter stateDir`,
    );
  }
}
