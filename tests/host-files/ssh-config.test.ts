import t from 'tap';
import { renderKnownHostsLine, renderSshHostEntry } from '../../daemon/host-files/ssh-config.js';

t.test('the host entry pins the key under the alias and binds to 127.0.0.1', async (t) => {
  const text = renderSshHostEntry({
    alias: 'linuxkit-builder',
    port: 31022,
    user: 'root',
    identityFile: '/state dir/keys/client_ed25519',
    knownHostsFile: '/state dir/keys/known_hosts',
    controlDir: '/state dir/ssh',
  });
  t.equal(
    text,
    [
      'Host linuxkit-builder',
      '  HostName 127.0.0.1',
      '  Port 31022',
      '  User root',
      '  IdentityFile "/state dir/keys/client_ed25519"',
      '  IdentitiesOnly yes',
      '  HostKeyAlias linuxkit-builder',
      '  StrictHostKeyChecking yes',
      '  UserKnownHostsFile "/state dir/keys/known_hosts"',
      '  ConnectTimeout 10',
      '  ServerAliveInterval 15',
      '  ControlMaster auto',
      '  ControlPath "/state dir/ssh/%C"',
      '  ControlPersist 60s',
      '',
    ].join('\n'),
  );
});

t.test('bad alias or port is refused with the field named', async (t) => {
  const base = { alias: 'b', port: 22, user: 'root', identityFile: '/k', knownHostsFile: '/kh' };
  t.throws(() => renderSshHostEntry({ ...base, alias: 'a b' }), /ssh alias/);
  t.throws(() => renderSshHostEntry({ ...base, port: 0 }), /ssh port/);
  t.throws(() => renderSshHostEntry({ ...base, identityFile: '/a"b' }), /cannot be written/);
});

t.test('known_hosts line names the alias and drops the comment', async (t) => {
  t.equal(
    renderKnownHostsLine('linuxkit-builder', 'ssh-ed25519 AAAAkey linuxkit-nix host\n'),
    'linuxkit-builder ssh-ed25519 AAAAkey\n',
  );
  t.throws(() => renderKnownHostsLine('b', 'garbage'), /not an OpenSSH public key line/);
});

t.test('on demand, ssh waits for the boot as long as the daemon holds the connection', async (t) => {
  const { renderSshDropInBody } = await import('../../daemon/host-files/registration-files.js');
  const { installLayout } = await import('../../daemon/host-files/install-layout.js');
  const { defaultConfig } = await import('../../daemon/config/load.js');
  const layout = installLayout({
    platform: 'linux',
    scope: 'system',
    root: null,
    user: { name: 'root', home: '/root', uid: 0, gid: 0 },
  } as Parameters<typeof installLayout>[0]);
  const always = defaultConfig();
  t.match(renderSshDropInBody(layout, always, null), /\n {2}ConnectTimeout 10\n/);
  const onDemand = {
    ...always,
    mode: 'on-demand' as const,
    onDemand: { ...always.onDemand, connectTimeoutMs: 300_500 },
  };
  t.match(renderSshDropInBody(layout, onDemand, null), /\n {2}ConnectTimeout 301\n/);
});
