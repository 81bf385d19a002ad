// Who holds a port: /proc/net/tcp{,6} and /proc/<pid>/fd on Linux, lsof's field output on macOS;
// and the verdict on the builder's SSH port when the holder is hidden from this user.
import { createServer, type Server } from 'node:net';
import t from 'tap';
import {
  describeHolder,
  findPortHolders,
  parseLsofFields,
  parseProcNetTcp,
  tryBind,
} from '../../client/install/port-holders.js';
import { judgeSshPort, type SshPortFacts } from '../../client/install/ssh-port-check.js';

const PROC_NET_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:7A22 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 51234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:7A22 0100007F:C350 01 00000000:00000000 00:00000000 00000000   501        0 51299 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1000 1 0000000000000000 100 0 0 10 0
`;
const PROC_NET_TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:7A22 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   501        0 61111 1 0000000000000000 100 0 0 10 0
`;

t.test('parseProcNetTcp: only LISTEN sockets (st 0A) on the port, v4 and v6', async (t) => {
  t.same(
    parseProcNetTcp(PROC_NET_TCP, 31266),
    [{ uid: 0, inode: 51234 }],
    'the established connection on the same port is not a listener',
  );
  t.same(parseProcNetTcp(PROC_NET_TCP6, 31266), [{ uid: 501, inode: 61111 }]);
  t.same(parseProcNetTcp(PROC_NET_TCP, 22), [{ uid: 0, inode: 1000 }]);
  t.same(parseProcNetTcp(PROC_NET_TCP, 31022), []);
  t.same(parseProcNetTcp('', 22), []);
});

t.test('parseLsofFields: one holder per process, files ignored', async (t) => {
  // lsof -nP -iTCP:31022 -sTCP:LISTEN -Fpcu, as macOS prints it (IPv4 and IPv6 files of one process).
  const out = 'p812\ncqemu-system-aarch64\nu501\nf13\nf14\np90\ncnix-daemon\nu0\nf7\n';
  t.same(parseLsofFields(out), [
    { pid: 812, command: 'qemu-system-aarch64', uid: 501 },
    { pid: 90, command: 'nix-daemon', uid: 0 },
  ]);
  t.same(parseLsofFields(''), []);
});

t.test('describeHolder: pid and command, long commands cut, hidden ones by uid', async (t) => {
  t.equal(describeHolder({ pid: 7, command: 'qemu', uid: 0 }), 'pid 7 (qemu)');
  t.equal(describeHolder({ pid: 7, command: 'x'.repeat(200), uid: 0 }), `pid 7 (${'x'.repeat(117)}...)`);
  t.equal(
    describeHolder({ pid: null, command: null, uid: 0 }),
    'a process of uid 0 that this user may not see',
  );
});

function listen(host = '127.0.0.1'): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, host, () => resolve(server));
  });
}

t.test(
  'on this Linux machine: a port this test listens on is taken, and /proc names this process',
  { skip: process.platform !== 'linux' },
  async (t) => {
    const server = await listen();
    t.teardown(() => server.close());
    const port = (server.address() as { port: number }).port;
    t.same(await tryBind(port), { free: false, code: 'EADDRINUSE' });
    const found = await findPortHolders(port, 'linux', async () => ({ code: 127, stdout: '', stderr: '' }));
    const me = found.holders.find((h) => h.pid === process.pid);
    t.ok(me, `pid ${process.pid} is among ${JSON.stringify(found.holders)}`);
    t.match(me?.command, process.execPath);
    await new Promise((r) => server.close(r));
    t.same(await tryBind(port), { free: true }, 'free once closed');
  },
);

t.test(
  'a listener on the wildcard address takes the port too, and is named',
  { skip: process.platform !== 'linux' },
  async (t) => {
    const server = await listen('0.0.0.0');
    t.teardown(() => server.close());
    const port = (server.address() as { port: number }).port;
    t.same(await tryBind(port), { free: false, code: 'EADDRINUSE' });
    const found = await findPortHolders(port, 'linux', async () => ({ code: 127, stdout: '', stderr: '' }));
    t.ok(
      found.holders.some((h) => h.pid === process.pid),
      'this process, from the 00000000 entry of /proc/net/tcp',
    );
  },
);

t.test('judgeSshPort: a hidden holder is taken for our VM only while that VM lives', async (t) => {
  const facts: SshPortFacts = {
    port: 31122,
    bind: { free: false, code: 'EADDRINUSE' },
    holders: { holders: [{ pid: null, command: null, uid: 0 }], gap: 'run as root to name them' },
    own: { vmPid: 4242, daemonPid: null },
    configPath: '/var/lib/linuxkit-nix/config.json',
    builder: null,
  };
  t.match(
    judgeSshPort(facts, () => true),
    {
      ok: true,
      message: /this builder's VM \(pid 4242\) runs, so most likely by it \(run as root to name them\)/,
    },
  );
  t.match(
    judgeSshPort(facts, () => false),
    { ok: false, message: /taken by a process of uid 0 that this user may not see/ },
  );
  t.match(
    judgeSshPort({
      ...facts,
      holders: { holders: [], gap: 'lsof is not installed, so the holder cannot be named' },
      own: { vmPid: null, daemonPid: null },
    }),
    {
      ok: false,
      message:
        'the SSH port 127.0.0.1:31122 is taken by a process that could not be found (lsof is not installed, so the holder cannot be named)',
    },
  );
  t.match(judgeSshPort({ ...facts, bind: { free: false, code: 'EADDRNOTAVAIL' } }), {
    ok: false,
    message: 'cannot listen on 127.0.0.1:31122: EADDRNOTAVAIL',
  });
});
