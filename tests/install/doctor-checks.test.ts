// evaluateChecks as a table: from facts where everything is right, inject one failure at a
// time and see exactly that check fail, with a message and a fix that say what to do.
import t from 'tap';
import {
  evaluateChecks,
  parseGuestReport,
  parseSshG,
  type DoctorFacts,
} from '../../client/install/doctor-checks.js';

const HOST_LINE =
  'ssh-ng://linuxkit-builder x86_64-linux /var/lib/linuxkit-nix/keys/client_ed25519 2 1 benchmark,big-parallel - QUJD';
const NOW = 1_700_000_000;

function healthy(): DoctorFacts {
  return {
    install: { manifestPath: '/var/lib/linuxkit-nix/install-manifest.json', found: true },
    underRoot: false,
    service: {
      queried: true,
      loaded: true,
      command: 'systemctl is-active --quiet linuxkit-nix.service',
      output: '',
      startCommand: 'sudo systemctl enable --now linuxkit-nix.service',
    },
    daemon: { ok: true, state: 'running', healthy: true, probeError: null, arch: 'x86_64', accel: 'kvm' },
    hostVirt: { platform: 'linux', arch: 'x64', hvSupport: null },
    backend: {
      ok: true,
      backend: 'qemu',
      accel: 'kvm',
      reason: 'auto on this linux/x64 host: qemu',
      missingTools: [],
      installHint: 'install QEMU',
    },
    socketPath: '/var/lib/linuxkit-nix/daemon.sock',
    daemonStartHint: 'linuxkitctl install',
    daemonLog: '/var/lib/linuxkit-nix/log/daemon.log',
    ssh: {
      command: 'ssh -G linuxkit-builder',
      ok: true,
      values: parseSshG(
        'hostname 127.0.0.1\nport 31022\nuser root\nidentityfile /var/lib/linuxkit-nix/keys/client_ed25519\nhostkeyalias linuxkit-builder\n',
      ),
    },
    sshInclude: { included: true, line: 'Include /etc/ssh/ssh_config.d/*.conf' },
    expected: {
      alias: 'linuxkit-builder',
      port: 31022,
      user: 'root',
      identityFile: '/var/lib/linuxkit-nix/keys/client_ed25519',
      sshDropIn: '/etc/ssh/ssh_config.d/linuxkit-nix.conf',
      machinesFile: '/etc/nix/machines',
      machinesLine: HOST_LINE,
      clientKey: '/var/lib/linuxkit-nix/keys/client_ed25519',
      hostKey: '/var/lib/linuxkit-nix/keys/ssh_host_ed25519_key',
      keyOwner: { uid: 0, name: 'root' },
      minFreeMiB: 256,
      supportedFeatures: ['benchmark', 'big-parallel'],
      nixConfDir: '/etc/nix',
    },
    guest: {
      ok: true,
      output: `clock ${NOW}\nkvm no\nFilesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 1048576 10240 1038336 1% /nix\n`,
      hostSecondsBefore: NOW - 0.2,
      hostSecondsAfter: NOW + 0.2,
    },
    machines: {
      text: `foreign\n# BEGIN linuxkit-nix\n${HOST_LINE}\n# END linuxkit-nix\n`,
      block: `${HOST_LINE}\n`,
    },
    builders: {
      setting: { value: '@/etc/nix/machines', source: 'nix show-config' },
      managedByNixTool: false,
      problems: [],
    },
    keys: [
      { path: '/var/lib/linuxkit-nix/keys/client_ed25519', mode: 0o600, uid: 0 },
      { path: '/var/lib/linuxkit-nix/keys/ssh_host_ed25519_key', mode: 0o600, uid: 0 },
    ],
    host: {
      platform: 'linux',
      home: '/root',
      serviceProgram: {
        file: '/etc/systemd/system/linuxkit-nix.service',
        manager: 'systemd',
        ok: true,
        argv: [
          '/usr/bin/node',
          '/opt/linuxkit-nix/dist/daemon/main.js',
          '--config',
          '/var/lib/linuxkit-nix/config.json',
        ],
        nodeExecutable: true,
        resolved: ['/usr/bin/node', '/opt/linuxkit-nix/dist/daemon/main.js'],
      },
      sshPort: {
        port: 31022,
        bind: { free: false, code: 'EADDRINUSE' },
        holders: {
          holders: [{ pid: 4242, command: 'qemu-system-x86_64 -name linuxkit-builder', uid: 0 }],
          gap: null,
        },
        own: { vmPid: 4242, daemonPid: 4200 },
        configPath: '/var/lib/linuxkit-nix/config.json',
        builder: null,
      },
    },
  };
}

const failing = (f: DoctorFacts) => evaluateChecks(f).filter((c) => !c.ok);
const byId = (f: DoctorFacts, id: string) => evaluateChecks(f).find((c) => c.id === id)!;

t.test('everything right: every check passes, in the documented order', async (t) => {
  const checks = evaluateChecks(healthy());
  t.same(
    checks.map((c) => c.id),
    [
      'install',
      'backend',
      'service-loaded',
      'service-program',
      'daemon-answers',
      'builder-healthy',
      'guest-accel',
      'ssh-port',
      'ssh-alias',
      'host-key',
      'machines-entry',
      'nix-builders',
      'key-permissions',
      'guest-disk',
      'guest-clock',
    ],
  );
  t.same(
    checks.filter((c) => !c.ok || c.skipped),
    [],
  );
  t.match(byId(healthy(), 'guest-disk').message, "1014 MiB free in the guest's /nix (minimum 256)");
  t.match(byId(healthy(), 'ssh-port').message, "held by this builder's VM, pid 4242 (qemu-system-x86_64");
});

const CASES: Array<{
  name: string;
  inject: (f: DoctorFacts) => void;
  fails: string[];
  message: RegExp;
  fix: RegExp;
  skipped?: string[];
}> = [
  {
    name: 'wrong port in the SSH drop-in',
    inject: (f) => {
      if (f.ssh.ok) f.ssh.values.port = ['2222'];
    },
    fails: ['ssh-alias'],
    message: /ssh -G linuxkit-builder: port is 2222, expected 31022/,
    fix: /run linuxkitctl install again to rewrite \/etc\/ssh\/ssh_config\.d\/linuxkit-nix\.conf; if ~\/\.ssh\/config .* "Host linuxkit-builder" entry/,
  },
  {
    name: 'the drop-in is not included by ssh_config',
    inject: (f) => {
      if (f.ssh.ok)
        f.ssh.values = parseSshG(
          'hostname linuxkit-builder\nport 22\nuser alice\nidentityfile ~/.ssh/id_ed25519\n',
        );
      f.sshInclude = {
        included: false,
        problem: '/etc/ssh/ssh_config has no Include line covering /etc/ssh/ssh_config.d/linuxkit-nix.conf',
        fixLine: 'Include /etc/ssh/ssh_config.d/*.conf',
      };
    },
    fails: ['ssh-alias'],
    message: /hostname is linuxkit-builder, expected 127\.0\.0\.1; port is 22, expected 31022/,
    fix: /add this line at the top of it \(before any Host or Match line\):\n {4}Include \/etc\/ssh\/ssh_config\.d\/\*\.conf/,
  },
  {
    name: 'missing machines entry',
    inject: (f) => {
      f.machines = { text: 'foreign\n', block: null };
    },
    fails: ['machines-entry'],
    message: /\/etc\/nix\/machines has no linuxkit-nix block, so Nix does not know the builder/,
    fix: /linuxkitctl install adds it/,
  },
  {
    name: 'an out-of-date machines entry',
    inject: (f) => {
      f.machines.block = `${HOST_LINE.replace(' 2 1 ', ' 4 1 ').replace('QUJD', 'WFla')}\n`;
    },
    fails: ['machines-entry'],
    message: /the entry is out of date: max jobs is '4', expected '2'; the host key differs/,
    fix: /run linuxkitctl install again to update it in place/,
  },
  {
    name: 'changed host key',
    inject: (f) => {
      f.guest = {
        ok: false,
        kind: 'host-key-mismatch',
        message:
          'host key mismatch for root@127.0.0.1:31022: the guest presented SHA256:x but SHA256:y is pinned; refusing to connect',
      };
    },
    fails: ['host-key'],
    message: /host key mismatch .* presented SHA256:x but SHA256:y is pinned/,
    fix: /not this install's builder, or .* was replaced: restart the builder \(linuxkitctl restart\)/,
    skipped: ['guest-disk', 'guest-clock'],
  },
  {
    name: 'hidden builders',
    inject: (f) => {
      f.builders = {
        setting: {
          value: 'ssh://other x86_64-linux',
          source: '/etc/nix/nix.conf:4',
          file: '/etc/nix/nix.conf',
          line: 4,
        },
        managedByNixTool: false,
        problems: [],
      };
    },
    fails: ['nix-builders'],
    message:
      /builders is 'ssh:\/\/other x86_64-linux' \(from \/etc\/nix\/nix\.conf:4\), which hides \/etc\/nix\/machines/,
    fix: /in \/etc\/nix\/nix\.conf line 4, change the builders line to:\n {4}builders = @\/etc\/nix\/machines ; ssh:\/\/other x86_64-linux/,
  },
  {
    name: 'daemon down',
    inject: (f) => {
      f.daemon = { ok: false, code: 'ECONNREFUSED', message: 'nothing listens on it' };
      f.guest = { ok: false, kind: 'unreachable', message: 'connect ECONNREFUSED 127.0.0.1:31022' };
    },
    fails: ['daemon-answers'],
    message: /linuxkitd does not answer on \/var\/lib\/linuxkit-nix\/daemon\.sock: nothing listens on it/,
    fix: /start it: linuxkitctl install.*why it stopped is in \/var\/lib\/linuxkit-nix\/log\/daemon\.log/,
    skipped: ['builder-healthy', 'guest-accel', 'host-key', 'guest-disk', 'guest-clock'],
  },
  {
    name: "the socket is root's",
    inject: (f) => {
      f.daemon = { ok: false, code: 'EACCES', message: 'permission denied' };
    },
    fails: ['daemon-answers'],
    message: /permission denied/,
    fix: /sudo linuxkitctl doctor/,
    skipped: ['builder-healthy', 'guest-accel'],
  },
  {
    name: 'service not loaded',
    inject: (f) => {
      if (f.service.queried) Object.assign(f.service, { loaded: false, output: 'inactive' });
    },
    fails: ['service-loaded'],
    message: /the service is not loaded: systemctl is-active --quiet linuxkit-nix\.service said inactive/,
    fix: /sudo systemctl enable --now linuxkit-nix\.service/,
  },
  {
    name: 'builder not healthy',
    inject: (f) => {
      f.daemon = {
        ok: true,
        state: 'degraded',
        healthy: false,
        probeError: 'Connection timed out during banner exchange',
        arch: 'x86_64',
        accel: 'kvm',
      };
      f.guest = { ok: false, kind: 'unreachable', message: 'timed out' };
    },
    fails: ['builder-healthy'],
    message: /the builder is degraded, not healthy: Connection timed out during banner exchange/,
    fix: /linuxkitctl logs --source console/,
    skipped: ['host-key', 'guest-disk', 'guest-clock'],
  },
  {
    name: 'loose key permissions and the wrong owner',
    inject: (f) => {
      f.keys[0] = { ...f.keys[0], mode: 0o644 };
      f.keys[1] = { ...f.keys[1], uid: 501 };
    },
    fails: ['key-permissions'],
    message:
      /client_ed25519 has mode 0644, expected 0600.*ssh_host_ed25519_key is owned by uid 501, expected root \(uid 0\)/,
    fix: /chmod 600 '\/var\/lib\/linuxkit-nix\/keys\/client_ed25519'\n {4}chown root '\/var\/lib\/linuxkit-nix\/keys\/ssh_host_ed25519_key'/,
  },
  {
    name: 'guest disk nearly full',
    inject: (f) => {
      if (f.guest.ok) f.guest.output = f.guest.output.replace('1038336', '102400');
    },
    fails: ['guest-disk'],
    message: /only 100 MiB free in the guest's \/nix, below gc\.minFreeMiB \(256\)/,
    fix: /nix-collect-garbage/,
  },
  {
    name: 'guest clock skew',
    inject: (f) => {
      if (f.guest.ok) f.guest.output = f.guest.output.replace(`clock ${NOW}`, `clock ${NOW - 3600}`);
    },
    fails: ['guest-clock'],
    message: /guest clock is off by -3600\.0 s/,
    fix: /linuxkitctl restart/,
  },
  {
    name: 'kvm advertised without /dev/kvm in the guest',
    inject: (f) => {
      f.expected.supportedFeatures = ['kvm', 'big-parallel'];
    },
    fails: ['guest-kvm'],
    message: /supportedFeatures lists kvm but the guest has no \/dev\/kvm/,
    fix: /remove kvm from supportedFeatures/,
  },
  {
    name: 'the config names a backend this host cannot run',
    inject: (f) => {
      f.backend = {
        ok: false,
        message: 'backend hyperkit runs only on Intel Macs; this is an Apple Silicon Mac',
      };
    },
    fails: ['backend'],
    message: /^the config asks for what this host cannot run: backend hyperkit runs only on Intel Macs/,
    fix: /linuxkitctl install --backend auto --accel auto/,
  },
  {
    name: "the chosen backend's tools are not on PATH",
    inject: (f) => {
      f.backend = {
        ok: true,
        backend: 'qemu',
        accel: 'kvm',
        reason: 'backend qemu in the config',
        missingTools: ['qemu-system-x86_64'],
        installHint: 'install QEMU',
      };
    },
    fails: ['backend'],
    message: /^backend qemu needs qemu-system-x86_64 on PATH, and it is not there$/,
    fix: /^install QEMU; then run linuxkitctl install again/,
  },
  {
    name: "the service's node is gone (a brew cleanup, a Nix GC)",
    inject: (f) => {
      if (f.host.serviceProgram.ok) f.host.serviceProgram.nodeExecutable = false;
    },
    fails: ['service-program'],
    message:
      /^the node in ExecStart= of \/etc\/systemd\/system\/linuxkit-nix\.service is \/usr\/bin\/node, which does not exist or is not executable/,
    fix: /run linuxkitctl install again from a shell whose PATH finds node/,
  },
  {
    name: 'the service file cannot be read',
    inject: (f) => {
      f.host.serviceProgram = {
        file: '/etc/systemd/system/linuxkit-nix.service',
        manager: 'systemd',
        ok: false,
        error: 'it does not exist',
      };
    },
    fails: ['service-program'],
    message:
      /cannot read the service's program from \/etc\/systemd\/system\/linuxkit-nix\.service: it does not exist/,
    fix: /linuxkitctl install writes it/,
  },
  {
    name: 'another program listens on the SSH port',
    inject: (f) => {
      f.host.sshPort.holders = {
        holders: [{ pid: 777, command: 'qemu-system-aarch64 -name nixos-linux-builder', uid: 0 }],
        gap: null,
      };
    },
    fails: ['ssh-port'],
    message:
      /^the SSH port 127\.0\.0\.1:31022 is taken by pid 777 \(qemu-system-aarch64 -name nixos-linux-builder\), not by this builder's VM/,
    fix: /stop that program, or choose another port: linuxkitctl install --ssh-port N \(it sets sshPort in \/var\/lib\/linuxkit-nix\/config\.json\)/,
  },
  {
    name: 'a holder this user cannot see, and no VM of ours',
    inject: (f) => {
      f.host.sshPort.holders = {
        holders: [{ pid: null, command: null, uid: 0 }],
        gap: "12 processes' open files are not readable by this user: run as root to name them",
      };
      f.host.sshPort.own = { vmPid: null, daemonPid: null };
    },
    fails: ['ssh-port'],
    message:
      /taken by a process of uid 0 that this user may not see \(12 processes' open files are not readable by this user: run as root to name them\)/,
    fix: /^find it with: sudo lsof -nP -iTCP:31022 -sTCP:LISTEN; stop it, or choose another port/,
  },
  {
    name: 'not installed',
    inject: (f) => {
      f.install = { manifestPath: '/var/lib/linuxkit-nix/install-manifest.json', found: false };
    },
    fails: ['install'],
    message: /no install manifest at \/var\/lib\/linuxkit-nix\/install-manifest\.json/,
    fix: /linuxkitctl install/,
  },
];

for (const c of CASES) {
  t.test(`${c.name}: reported by ${c.fails.join(', ')}`, async (t) => {
    const f = healthy();
    c.inject(f);
    const failed = failing(f);
    t.same(
      failed.map((x) => x.id),
      c.fails,
    );
    t.match(failed[0].message, c.message);
    t.match(failed[0].fix, c.fix);
    t.same(
      evaluateChecks(f)
        .filter((x) => x.skipped)
        .map((x) => x.id),
      c.skipped ?? [],
    );
  });
}

t.test('service-program: a versioned node is a warning with a fix, not a failure', async (t) => {
  for (const [node, why] of [
    ['/opt/homebrew/Cellar/node/22.1.0/bin/node', /a versioned Homebrew path: after brew upgrade/],
    ['/nix/store/0abc-nodejs-22/bin/node', /a path in the Nix store: a garbage collection may delete it/],
  ] as const) {
    const f = healthy();
    f.host.platform = 'darwin';
    f.host.serviceProgram = {
      file: '/Library/LaunchDaemons/org.nixos.linuxkit-nix.plist',
      manager: 'launchd',
      ok: true,
      argv: [node, '/opt/l/dist/daemon/main.js'],
      nodeExecutable: true,
      resolved: [node, '/opt/l/dist/daemon/main.js'],
    };
    const c = byId(f, 'service-program');
    t.match(c, {
      ok: true,
      warning: true,
      message:
        /^ProgramArguments\[0\] of \/Library\/LaunchDaemons\/org\.nixos\.linuxkit-nix\.plist: the service runs node as /,
    });
    t.match(c.message, why);
    t.ok(c.fix, 'the fix says which path to use instead');
  }
});

t.test(
  'macos-privacy: only on macOS; fails for node or main.js in Documents, Desktop, Downloads or /Volumes',
  async (t) => {
    const linux = healthy();
    if (linux.host.serviceProgram.ok)
      linux.host.serviceProgram.argv[1] = '/home/alice/Documents/linuxkit-nix/dist/daemon/main.js';
    t.equal(byId(linux, 'macos-privacy'), undefined, 'no such check on Linux');

    const mac = healthy();
    mac.host = { ...mac.host, platform: 'darwin', home: '/Users/alice' };
    t.match(byId(mac, 'macos-privacy'), {
      ok: true,
      message: /outside the folders macOS keeps from launchd jobs/,
    });
    const main = '/Users/alice/Documents/src/linuxkit-nix/dist/daemon/main.js';
    mac.host.serviceProgram = {
      ...(mac.host.serviceProgram as Extract<DoctorFacts['host']['serviceProgram'], { ok: true }>),
      resolved: ['/usr/bin/node', main],
    };
    t.same(
      failing(mac).map((c) => c.id),
      ['macos-privacy'],
      'a resolved path counts too (a link from elsewhere into Documents)',
    );
    t.match(byId(mac, 'macos-privacy'), {
      message: new RegExp(
        `${main.replace(/\//g, '\\/')}, in /Users/alice/Documents, which macOS privacy protection`,
      ),
      fix: /move the checkout out of \/Users\/alice\/Documents/,
    });
  },
);

t.test('ssh-port: free, or held by our own VM or daemon, passes', async (t) => {
  const free = healthy();
  free.host.sshPort = { ...free.host.sshPort, bind: { free: true }, holders: null };
  t.match(byId(free, 'ssh-port'), { ok: true, message: 'the SSH port 127.0.0.1:31022 is free' });
  const bridge = healthy();
  bridge.host.sshPort.holders = { holders: [{ pid: 4200, command: 'node linuxkitd', uid: 0 }], gap: null };
  t.match(byId(bridge, 'ssh-port'), {
    ok: true,
    message: /held by this builder's daemon \(its on-demand SSH endpoint or HyperKit SSH bridge\), pid 4200/,
  });
});

t.test('a small clock difference inside the round trip is fine', async (t) => {
  const f = healthy();
  if (f.guest.ok) f.guest.output = f.guest.output.replace(`clock ${NOW}`, `clock ${NOW + 4}`);
  t.equal(byId(f, 'guest-clock').ok, true);
});

t.test('under --root the service check is skipped with a note', async (t) => {
  const f = healthy();
  f.underRoot = true;
  f.service = { queried: false, reason: 'under --root' };
  t.match(byId(f, 'service-loaded'), { ok: true, skipped: true, message: /not checked under --root/ });
});

t.test('guest-accel: emulation (tcg) fails only on a Mac that could run the guest with hvf', async (t) => {
  type Row = [string, Partial<DoctorFacts['hostVirt']>, { arch: string; accel: string }, boolean, RegExp];
  const rows: Row[] = [
    [
      'aarch64 guest on an Apple silicon Mac under tcg',
      { platform: 'darwin', arch: 'arm64', hvSupport: true },
      { arch: 'aarch64', accel: 'tcg' },
      false,
      /the aarch64 guest runs under tcg \(emulated\) on a Mac where hvf should be available \(a aarch64 guest on a arm64 Mac, kern\.hv_support is 1\)/,
    ],
    [
      'x86_64 guest on an Intel Mac under tcg, hv_support unknown',
      { platform: 'darwin', arch: 'x64', hvSupport: null },
      { arch: 'x86_64', accel: 'tcg' },
      false,
      /the x86_64 guest runs under tcg \(emulated\) on a Mac where hvf should be available \(a x86_64 guest on a x64 Mac\)/,
    ],
    [
      'aarch64 guest on an Apple silicon Mac under hvf',
      { platform: 'darwin', arch: 'arm64', hvSupport: true },
      { arch: 'aarch64', accel: 'hvf' },
      true,
      /the aarch64 guest runs under hvf \(hardware virtualisation\)/,
    ],
    [
      'x86_64 guest on an Apple silicon Mac: tcg is the only way',
      { platform: 'darwin', arch: 'arm64', hvSupport: true },
      { arch: 'x86_64', accel: 'tcg' },
      true,
      /emulated, as a x86_64 guest must be on a arm64 Mac \(hvf runs only aarch64 guests\)/,
    ],
    [
      'a Mac without Hypervisor.framework (itself a VM)',
      { platform: 'darwin', arch: 'arm64', hvSupport: false },
      { arch: 'aarch64', accel: 'tcg' },
      true,
      /no Hypervisor\.framework support \(sysctl kern\.hv_support is 0/,
    ],
    [
      'aarch64 guest on a Linux x86_64 host under tcg',
      { platform: 'linux', arch: 'x64', hvSupport: null },
      { arch: 'aarch64', accel: 'tcg' },
      true,
      /the aarch64 guest runs under tcg \(emulated: KVM is not in use on this host\)/,
    ],
    [
      'x86_64 guest on Linux under kvm',
      { platform: 'linux', arch: 'x64', hvSupport: null },
      { arch: 'x86_64', accel: 'kvm' },
      true,
      /the x86_64 guest runs under kvm \(hardware virtualisation\)/,
    ],
  ];
  for (const [name, host, guest, ok, message] of rows) {
    const f = healthy();
    f.hostVirt = { ...f.hostVirt, ...host };
    f.daemon = { ok: true, state: 'running', healthy: true, probeError: null, ...guest };
    const check = byId(f, 'guest-accel');
    t.equal(check.ok, ok, `${name}: ${ok ? 'passes' : 'fails'}`);
    t.match(check.message, message, name);
    t.same(
      failing(f).map((c) => c.id),
      ok ? [] : ['guest-accel'],
      `${name}: no other check is affected`,
    );
    if (!ok) t.match(check.fix, /linuxkitctl install --accel auto \(or set "accel": "auto" in the config\)/);
  }
  const named = healthy();
  named.expected.builder = 'arm';
  named.hostVirt = { platform: 'darwin', arch: 'arm64', hvSupport: true };
  named.daemon = {
    ok: true,
    state: 'running',
    healthy: true,
    probeError: null,
    arch: 'aarch64',
    accel: 'tcg',
  };
  t.match(
    byId(named, 'guest-accel').fix,
    /linuxkitctl install --builder arm --accel auto/,
    'the fix names the builder',
  );
  const down = healthy();
  down.daemon = { ok: false, code: 'ENOENT', message: 'no socket there' };
  t.match(byId(down, 'guest-accel'), {
    ok: true,
    skipped: true,
    message: 'not checked: the daemon does not answer',
  });
});

t.test('guest report and ssh -G parsing', async (t) => {
  t.same(
    parseGuestReport(
      'clock 12\nkvm yes\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 100 50 50 50% /nix\n',
    ),
    { clock: 12, kvm: true, availKiB: 50, mount: '/nix' },
  );
  t.same(parseGuestReport('garbage'), { clock: null, kvm: null, availKiB: null, mount: null });
  t.same(parseSshG('User root\nidentityfile /a\nidentityfile /b\n'), {
    user: ['root'],
    identityfile: ['/a', '/b'],
  });
});
