// In on-demand mode the daemon's endpoint holds 127.0.0.1:<sshPort>, so each boot's hypervisor
// forwards the guest's SSH port to another loopback port: one the kernel says is free now. It
// is in the VM record, so a daemon that adopts the VM finds it again.
import * as net from 'node:net';
import type { ModeSetting } from '../config/schema.js';

/** A TCP port on 127.0.0.1 that nothing listens on at this moment. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = address && typeof address === 'object' ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port on 127.0.0.1'))));
    });
  });
}

/** The host port the hypervisor forwards to the guest's SSH: the user's port, or a free one. */
export async function guestForwardPort(mode: ModeSetting, sshPort: number): Promise<number> {
  return mode === 'on-demand' ? freeLoopbackPort() : sshPort;
}
