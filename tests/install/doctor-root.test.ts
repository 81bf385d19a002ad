// doctor against a real --root install, with its facts really gathered: ssh -G -F on the
// drop-in, the machines file, nix.conf, key modes, a stand-in daemon on the socket and a
// stand-in guest (an ssh2 server) on the SSH port. Each failure doctor checks for is
// injected in turn and must be the one reported. (The lead adds a test against a real VM.)
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';
import { ensureBuilderKeys } from '../../daemon/keys/builder-keys.js';
import { runCommand } from '../../client/install/run-command.js';
import { freePort, tempDir } from '../helpers/env.js';
import { cli, pretendMachine, PROGRAM, recordingRunner } from './install-fixtures.js';

// ssh2 is CommonJS and exports Server only on its default export.
const { Server: SshServer } = ssh2;
type SshServer = InstanceType<typeof SshServer>;

const me = {
  ...pretendMachine('linux'),
  uid: process.getuid!(),
  gid: process.getgid!(),
  username: userInfo().username,
};
const runner = recordingRunner();
const realRunner = {
  calls: runner.calls,
  run: async (argv: string[], opts?: { timeoutMs?: number }) => (
    runner.calls.push(argv), runCommand(argv, opts)
  ),
};

interface Check {
  id: string;
  ok: boolean;
  skipped?: boolean;
  message: string;
  fix?: string;
}

async function doctor(root: string): Promise<{ code: number; checks: Check[]; text: string }> {
  const json = await cli('doctor', ['--root', root, '--json'], { facts: me, runner: realRunner });
  const text = await cli('doctor', ['--root', root], { facts: me, runner: realRunner });
  return { code: json.code, checks: (JSON.parse(json.out) as { checks: Check[] }).checks, text: text.out };
}
const failed = (checks: Check[]) => checks.filter((c) => !c.ok).map((c) => c.id);

/** A stand-in linuxkitd answering GET /v1/status on the socket. */
function fakeDaemon(socketPath: string, healthy: boolean): Promise<HttpServer> {
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        state: healthy ? 'running' : 'starting',
        healthy,
        arch: 'x86_64',
        accel: 'tcg',
        probe: { ok: healthy, error: healthy ? null : 'connection refused' },
      }),
    );
  });
  return new Promise((resolve) => server.listen(socketPath, () => resolve(server)));
}

/** A stand-in guest: an SSH server with `hostKeyFile` that answers doctor's script. */
function fakeGuest(port: number, hostKey: Buffer, report: () => string): Promise<SshServer> {
  const server = new SshServer({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) =>
      ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey']),
    );
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec) => {
          const stream = acceptExec();
          stream.write(report());
          stream.exit(0);
          stream.end();
        });
      });
    });
    client.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

const guestReport = (availKiB: number) => () =>
  `clock ${Math.round(Date.now() / 1000)}\nkvm no\nFilesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 2097152 1024 ${availKiB} 1% /nix\n`;

t.test(
  'doctor on a --root install: all green with a daemon and a guest, then each injected failure',
  async (t) => {
    const root = await tempDir('doc');
    const port = await freePort();
    t.teardown(() => rm(root, { recursive: true, force: true }));
    // The unit names a node that exists here (doctor's service-program check looks).
    const inst = await cli('install', ['--root', root, '--system', '--ssh-port', String(port)], {
      facts: me,
      program: { ...PROGRAM, node: process.execPath },
    });
    t.equal(inst.code, 0, inst.err);
    const state = join(root, 'var/lib/linuxkit-nix');
    const dropIn = join(root, 'etc/ssh/ssh_config.d/linuxkit-nix.conf');
    const machines = join(root, 'etc/nix/machines');

    // Nothing runs yet: the daemon is down, and what needs it is skipped, not failed.
    const down = await doctor(root);
    t.equal(down.code, 1);
    t.same(failed(down.checks), ['daemon-answers']);
    t.same(
      down.checks.filter((c) => c.skipped).map((c) => c.id),
      ['service-loaded', 'builder-healthy', 'guest-accel', 'host-key', 'guest-disk', 'guest-clock'],
    );
    t.match(
      down.checks.find((c) => c.id === 'daemon-answers')!.fix,
      `start it: /usr/local/bin/node /opt/linuxkit-nix/dist/daemon/main.js --config ${state}/config.json`,
    );
    t.match(down.text, /^\[FAIL\] daemon-answers: linuxkitd does not answer/m);
    t.match(
      down.text,
      /^\[ ok \] ssh-alias: ssh resolves linuxkit-builder to 127\.0\.0\.1:\d+ as root with \S+client_ed25519$/m,
    );
    t.match(down.text, /1 check failed\n$/);

    let daemon = await fakeDaemon(join(state, 'daemon.sock'), true);
    let guest = await fakeGuest(
      port,
      await readFile(join(state, 'keys/ssh_host_ed25519_key')),
      guestReport(1_048_576),
    );
    // This process plays the VM, so it is the VM record's pid: the SSH port is held by "our VM".
    await writeFile(
      join(state, 'vm.json'),
      JSON.stringify({ backend: 'qemu', pid: process.pid, argv: [], sshPort: port }),
    );
    t.teardown(() => {
      daemon.close();
      guest.close();
    });
    const green = await doctor(root);
    t.same(failed(green.checks), [], green.text);
    t.equal(green.code, 0);
    t.match(green.text, /all checks passed\n$/);
    t.match(green.checks.find((c) => c.id === 'guest-disk')!.message, "1024 MiB free in the guest's /nix");
    t.same(
      runner.calls.map((c) => c[0]),
      runner.calls.map(() => 'ssh'),
      'only ssh -G ran: no service manager, no nix under --root',
    );
    t.same(runner.calls[0], ['ssh', '-G', '-F', dropIn, 'linuxkit-builder']);

    await t.test('wrong port in the SSH drop-in', async (t) => {
      const text = await readFile(dropIn, 'utf8');
      await writeFile(dropIn, text.replace(`Port ${port}`, 'Port 2222'));
      const r = await doctor(root);
      t.same(failed(r.checks), ['ssh-alias']);
      t.match(r.checks.find((c) => c.id === 'ssh-alias')!.message, `port is 2222, expected ${port}`);
      await writeFile(dropIn, text);
    });

    await t.test('missing machines entry', async (t) => {
      const text = await readFile(machines, 'utf8');
      await writeFile(machines, '# nothing here\n');
      const r = await doctor(root);
      t.same(failed(r.checks), ['machines-entry']);
      t.match(r.checks.find((c) => c.id === 'machines-entry')!.message, 'has no linuxkit-nix block');
      await writeFile(machines, text);
    });

    await t.test('hidden builders', async (t) => {
      await writeFile(join(root, 'etc/nix/nix.conf'), 'builders =\n');
      const r = await doctor(root);
      t.same(failed(r.checks), ['nix-builders']);
      t.match(r.checks.find((c) => c.id === 'nix-builders')!.fix, `builders = @${machines}`);
      await rm(join(root, 'etc/nix/nix.conf'));
    });

    await t.test('changed host key', async (t) => {
      guest.close();
      const otherDir = await tempDir('other');
      t.teardown(() => rm(otherDir, { recursive: true, force: true }));
      const other = await ensureBuilderKeys(join(otherDir, 'keys'));
      guest = await fakeGuest(port, await readFile(other.hostKey), guestReport(1_048_576));
      const r = await doctor(root);
      t.same(failed(r.checks), ['host-key']);
      t.match(
        r.checks.find((c) => c.id === 'host-key')!.message,
        /host key mismatch for root@127\.0\.0\.1:\d+: the guest presented SHA256:\S+ but SHA256:\S+ is pinned/,
      );
      guest.close();
      guest = await fakeGuest(
        port,
        await readFile(join(state, 'keys/ssh_host_ed25519_key')),
        guestReport(100 * 1024),
      );
    });

    await t.test('guest disk below gc.minFreeMiB', async (t) => {
      const r = await doctor(root);
      t.same(failed(r.checks), ['guest-disk']);
      t.match(
        r.checks.find((c) => c.id === 'guest-disk')!.message,
        "only 100 MiB free in the guest's /nix, below gc.minFreeMiB (256)",
      );
    });

    await t.test('key permissions', async (t) => {
      await chmod(join(state, 'keys/client_ed25519'), 0o644);
      const r = await doctor(root);
      t.same(failed(r.checks), ['key-permissions', 'guest-disk']);
      t.match(
        r.checks.find((c) => c.id === 'key-permissions')!.fix,
        `chmod 600 '${state}/keys/client_ed25519'`,
      );
      await chmod(join(state, 'keys/client_ed25519'), 0o600);
    });

    await t.test('builder not healthy, then daemon down', async (t) => {
      daemon.close();
      daemon = await fakeDaemon(join(state, 'daemon.sock'), false);
      const sick = await doctor(root);
      t.same(failed(sick.checks), ['builder-healthy', 'guest-disk']);
      t.match(
        sick.checks.find((c) => c.id === 'builder-healthy')!.message,
        'the builder is starting, not healthy: connection refused',
      );
      await new Promise((resolve) => daemon.close(resolve));
      const r = await doctor(root);
      t.same(failed(r.checks), ['daemon-answers', 'guest-disk']);
    });
  },
);

t.test('doctor with no install says so and where it looked', async (t) => {
  const root = await tempDir('doc0');
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const r = await doctor(root);
  t.equal(r.code, 1);
  t.match(r.checks[0], {
    id: 'install',
    ok: false,
    message: `no install manifest at ${root}/var/lib/linuxkit-nix/install-manifest.json`,
  });
});
