// `linuxkitctl doctor` as a pure evaluation: the gatherer (doctor-facts.ts)
// collects facts about the service, the daemon, ssh, Nix and the guest; this turns them into
// checks in a fixed order, each with a fix when it fails. Tests table the facts directly.
import { checkBuilders, type SettingSource } from './nix-conf.js';
import { diffMachinesLine } from '../../daemon/host-files/registration-files.js';
import type { SshIncludeCheck } from './ssh-include.js';
import {
  macosPrivacyCheck,
  serviceProgramCheck,
  sshPortCheck,
  type HostCheckFacts,
} from './doctor-host-checks.js';

export type CheckId =
  | 'install'
  | 'backend'
  | 'service-loaded'
  | 'service-program'
  | 'macos-privacy'
  | 'ssh-port'
  | 'daemon-answers'
  | 'builder-healthy'
  | 'guest-accel'
  | 'ssh-alias'
  | 'host-key'
  | 'machines-entry'
  | 'nix-builders'
  | 'key-permissions'
  | 'guest-disk'
  | 'guest-clock'
  | 'guest-kvm';

export interface CheckResult {
  id: CheckId;
  ok: boolean;
  /** Not evaluated (counts as ok): what it needs is missing for a reason another check reports. */
  skipped?: boolean;
  /** Works now but will break (counts as ok; the fix is shown). */
  warning?: boolean;
  message: string;
  fix?: string;
}

export interface Expected {
  alias: string;
  port: number;
  user: string;
  identityFile: string;
  sshDropIn: string;
  machinesFile: string;
  /** The machines line install would write now; null when the host public key is unreadable. */
  machinesLine: string | null;
  clientKey: string;
  hostKey: string;
  keyOwner: { uid: number; name: string };
  minFreeMiB: number;
  /** The config's diskGiB: 0 keeps the store in RAM. */
  diskGiB: number;
  supportedFeatures: string[];
  nixConfDir: string;
  /** The builder's name (install --builder NAME); absent or null: the default builder. */
  builder?: string | null;
}

/** Whether this host could run the guest with hardware acceleration (from daemon/host/host-facts.ts). */
export interface HostVirtFacts {
  platform: 'darwin' | 'linux';
  /** The machine's own architecture, `process.arch` spelling: 'arm64', 'x64' (not Node's under Rosetta). */
  arch: string;
  /** macOS `sysctl -n kern.hv_support` (Hypervisor.framework usable); null when unknown or not macOS. */
  hvSupport: boolean | null;
  /** This command's Node runs under Rosetta. */
  rosetta?: boolean;
}

/** What the registry's backend choice makes of the install's config on this host. */
export type BackendFacts =
  | { ok: true; backend: string; accel: string; reason: string; missingTools: string[]; installHint: string }
  | { ok: false; message: string };

export type GuestFacts =
  | { ok: true; output: string; hostSecondsBefore: number; hostSecondsAfter: number }
  | { ok: false; kind: 'host-key-mismatch' | 'unreachable' | 'no-keys'; message: string };

export interface DoctorFacts {
  install: { manifestPath: string; found: boolean; configProblem?: string };
  underRoot: boolean;
  service:
    | { queried: false; reason: string }
    | { queried: true; loaded: boolean; command: string; output: string; startCommand: string };
  daemon:
    | {
        ok: true;
        state: string;
        healthy: boolean;
        probeError: string | null;
        arch: string;
        accel: string;
        vmPid?: number | null;
      }
    | { ok: false; code: string; message: string };
  hostVirt: HostVirtFacts;
  backend: BackendFacts;
  socketPath: string;
  /** How to start the daemon by hand (under --root: its command line). */
  daemonStartHint: string;
  daemonLog: string;
  ssh:
    | { command: string; ok: true; values: Record<string, string[]> }
    | { command: string; ok: false; message: string };
  sshInclude: SshIncludeCheck | null;
  expected: Expected;
  guest: GuestFacts;
  machines: { text: string | null; block: string | null; error?: string };
  builders: {
    setting: SettingSource | null;
    managedByNixTool: boolean;
    editFile?: string | null;
    problems: string[];
  };
  keys: Array<{ path: string; mode: number | null; uid: number | null; error?: string }>;
  /** The service file's program, the service user's home and the SSH port (doctor-host-checks.ts). */
  host: HostCheckFacts;
}

/** Guest clock may be off by this much (plus half the SSH round trip) before doctor complains. */
export const CLOCK_SKEW_LIMIT_S = 5;

/** `ssh -G` output: lower-case keyword → its values (identityfile may repeat). */
export function parseSshG(output: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of output.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const keyword = m[1].toLowerCase();
    out[keyword] = [...(out[keyword] ?? []), m[2]];
  }
  return out;
}

/** What the guest script printed: `clock <epoch>`, `kvm yes|no`, then `df -Pk /nix`. */
export function parseGuestReport(output: string): {
  clock: number | null;
  kvm: boolean | null;
  availKiB: number | null;
  mount: string | null;
} {
  const lines = output.split('\n');
  const clockLine = lines.find((l) => l.startsWith('clock '));
  const kvmLine = lines.find((l) => l.startsWith('kvm '));
  const header = lines.findIndex((l) => /^Filesystem\s/.test(l));
  const dfLine = header >= 0 ? lines.slice(header + 1).find((l) => l.trim() !== '') : undefined;
  const fields = dfLine?.trim().split(/\s+/) ?? [];
  const avail = fields.length >= 6 ? Number(fields[fields.length - 3]) : NaN;
  const clock = clockLine ? Number(clockLine.slice(6).trim()) : NaN;
  return {
    clock: Number.isFinite(clock) ? clock : null,
    kvm: kvmLine ? kvmLine.slice(4).trim() === 'yes' : null,
    availKiB: Number.isFinite(avail) ? avail : null,
    mount: fields.length >= 6 ? fields[fields.length - 1] : null,
  };
}

/** The script doctor runs in the guest: one SSH connection for clock, KVM and disk. */
export const GUEST_REPORT_SCRIPT =
  'echo "clock $(date +%s)"; if [ -c /dev/kvm ]; then echo "kvm yes"; else echo "kvm no"; fi; df -Pk /nix';

const pass = (id: CheckId, message: string): CheckResult => ({ id, ok: true, message });
const fail = (id: CheckId, message: string, fix: string): CheckResult => ({ id, ok: false, message, fix });
const skip = (id: CheckId, message: string): CheckResult => ({ id, ok: true, skipped: true, message });

function sshAlias(f: DoctorFacts): CheckResult {
  const e = f.expected;
  if (!f.ssh.ok)
    return fail(
      'ssh-alias',
      `${f.ssh.command} failed: ${f.ssh.message}`,
      'check that OpenSSH is installed and the drop-in parses: ssh -G ' + e.alias,
    );
  const v = f.ssh.values;
  const wrong: string[] = [];
  const one = (k: string) => v[k]?.[0] ?? '(unset)';
  if (one('hostname') !== '127.0.0.1') wrong.push(`hostname is ${one('hostname')}, expected 127.0.0.1`);
  if (one('port') !== String(e.port)) wrong.push(`port is ${one('port')}, expected ${e.port}`);
  if (one('user') !== e.user) wrong.push(`user is ${one('user')}, expected ${e.user}`);
  if (!(v.identityfile ?? []).includes(e.identityFile))
    wrong.push(`identity file is ${(v.identityfile ?? ['(unset)']).join(', ')}, expected ${e.identityFile}`);
  if (one('hostkeyalias') !== e.alias)
    wrong.push(
      `HostKeyAlias is ${one('hostkeyalias')}, expected ${e.alias} (Nix pins the host key under that name)`,
    );
  if (wrong.length === 0)
    return pass(
      'ssh-alias',
      `ssh resolves ${e.alias} to 127.0.0.1:${e.port} as ${e.user} with ${e.identityFile}`,
    );
  let fix = `run linuxkitctl install again to rewrite ${e.sshDropIn}`;
  if (f.sshInclude && !f.sshInclude.included) {
    fix = `${f.sshInclude.problem}; add this line at the top of it (before any Host or Match line):\n    ${f.sshInclude.fixLine}`;
  } else {
    fix += `; if ~/.ssh/config (or an earlier file) has its own "Host ${e.alias}" entry, it wins over the drop-in: remove it`;
  }
  return fail('ssh-alias', `${f.ssh.command}: ${wrong.join('; ')}`, fix);
}

/** The guest architecture the host's CPU runs natively. */
const NATIVE_GUEST_ARCH: Record<string, string> = { arm64: 'aarch64', x64: 'x86_64' };

/** Emulation (tcg) is expected on Linux without KVM and for a foreign guest architecture; on a Mac with hvf it is a mistake. */
function guestAccel(f: DoctorFacts): CheckResult {
  if (!f.daemon.ok) return skip('guest-accel', 'not checked: the daemon does not answer');
  const { arch, accel } = f.daemon;
  const h = f.hostVirt;
  const runs = `the ${arch} guest runs under ${accel}`;
  if (accel !== 'tcg') return pass('guest-accel', `${runs} (hardware virtualisation)`);
  if (h.platform !== 'darwin')
    return pass('guest-accel', `${runs} (emulated: KVM is not in use on this host)`);
  const native = NATIVE_GUEST_ARCH[h.arch] ?? h.arch;
  if (arch !== native) {
    return pass(
      'guest-accel',
      `${runs}: emulated, as a ${arch} guest must be on a ${h.arch} Mac (hvf runs only ${native} guests), so its builds are several times slower than a ${native} builder's`,
    );
  }
  if (h.hvSupport === false) {
    return pass(
      'guest-accel',
      `${runs}: emulated, since this Mac has no Hypervisor.framework support (sysctl kern.hv_support is 0, e.g. inside a VM)`,
    );
  }
  const builder = f.expected.builder ? ` --builder ${f.expected.builder}` : '';
  return fail(
    'guest-accel',
    `${runs} (emulated) on a Mac where hvf should be available (a ${native} guest on a ${h.arch} Mac${h.hvSupport ? ', kern.hv_support is 1' : ''}): builds run many times slower than they could`,
    `let the daemon use hvf: linuxkitctl install${builder} --accel auto (or set "accel": "auto" in the config); if QEMU then fails to start with hvf, its build lacks it: use QEMU from Homebrew or nixpkgs`,
  );
}

/** The config's backend and accelerator can run on this host, with their tools on PATH. */
function backendChoice(f: DoctorFacts): CheckResult {
  const b = f.backend;
  const builder = f.expected.builder ? ` --builder ${f.expected.builder}` : '';
  if (!b.ok) {
    return fail(
      'backend',
      `the config asks for what this host cannot run: ${b.message}`,
      `let the daemon choose: linuxkitctl install${builder} --backend auto --accel auto (or set both to "auto" in the config)`,
    );
  }
  if (b.missingTools.length > 0) {
    return fail(
      'backend',
      `backend ${b.backend} needs ${b.missingTools.join(' and ')} on PATH, and ${b.missingTools.length === 1 ? 'it is' : 'they are'} not there`,
      `${b.installHint}; then run linuxkitctl install${builder} again so the daemon's PATH has it`,
    );
  }
  return pass('backend', `backend ${b.backend} with ${b.accel} (${b.reason})`);
}

function builderDown(f: DoctorFacts): string | null {
  if (!f.daemon.ok) return 'the daemon does not answer';
  if (!f.daemon.healthy) return `the builder is ${f.daemon.state}`;
  return null;
}

function hostKey(f: DoctorFacts): CheckResult {
  const g = f.guest;
  if (g.ok) return pass('host-key', `the guest presented the pinned host key (${f.expected.hostKey}.pub)`);
  if (g.kind === 'host-key-mismatch') {
    return fail(
      'host-key',
      g.message,
      `the VM answering on 127.0.0.1:${f.expected.port} is not this install's builder, or ${f.expected.hostKey} was replaced: restart the builder (linuxkitctl restart) so it boots with the pinned key; if another program uses that port, pick another with linuxkitctl install --ssh-port N`,
    );
  }
  if (g.kind === 'no-keys') return skip('host-key', `not checked: ${g.message} (see key-permissions)`);
  const down = builderDown(f);
  if (down) return skip('host-key', `not checked: ${down}`);
  return fail(
    'host-key',
    `could not reach the guest: ${g.message}`,
    'linuxkitctl logs --source console shows what the guest did; linuxkitctl restart',
  );
}

function machinesEntry(f: DoctorFacts): CheckResult {
  const e = f.expected;
  const m = f.machines;
  if (m.error)
    return fail(
      'machines-entry',
      `cannot read ${e.machinesFile}: ${m.error}`,
      `run doctor as root, or check the file's permissions`,
    );
  if (m.text === null)
    return fail('machines-entry', `${e.machinesFile} does not exist`, 'linuxkitctl install writes it');
  if (m.block === null)
    return fail(
      'machines-entry',
      `${e.machinesFile} has no linuxkit-nix block, so Nix does not know the builder`,
      'linuxkitctl install adds it',
    );
  if (e.machinesLine === null)
    return fail(
      'machines-entry',
      `cannot tell whether ${e.machinesFile} is current: the host public key ${e.hostKey}.pub is unreadable`,
      'see key-permissions',
    );
  const found = m.block.trim();
  if (found === e.machinesLine.trim())
    return pass('machines-entry', `${e.machinesFile} has the current entry for ${e.alias}`);
  const diffs = diffMachinesLine(e.machinesLine, found).map((d) =>
    d.field === 'host key' ? 'the host key differs' : `${d.field} is '${d.found}', expected '${d.expected}'`,
  );
  return fail(
    'machines-entry',
    `${e.machinesFile}: the entry is out of date: ${diffs.join('; ')}`,
    'run linuxkitctl install again to update it in place',
  );
}

function keyPermissions(f: DoctorFacts): CheckResult {
  const e = f.expected;
  const problems: string[] = [];
  const fixes: string[] = [];
  for (const k of f.keys) {
    if (k.error || k.mode === null || k.uid === null) {
      problems.push(`${k.path}: ${k.error ?? 'missing'}`);
      continue;
    }
    if ((k.mode & 0o777) !== 0o600) {
      problems.push(
        `${k.path} has mode 0${(k.mode & 0o777).toString(8)}, expected 0600 (ssh refuses keys others can read)`,
      );
      fixes.push(`chmod 600 '${k.path}'`);
    }
    if (k.uid !== e.keyOwner.uid) {
      problems.push(
        `${k.path} is owned by uid ${k.uid}, expected ${e.keyOwner.name} (uid ${e.keyOwner.uid})`,
      );
      fixes.push(`chown ${e.keyOwner.name} '${k.path}'`);
    }
  }
  if (problems.length === 0) return pass('key-permissions', `keys are 0600 and owned by ${e.keyOwner.name}`);
  const missing = f.keys.some((k) => k.error || k.mode === null);
  const fix = [
    ...fixes,
    ...(missing
      ? ['run linuxkitctl install to make missing keys (or run doctor as the user that owns them)']
      : []),
  ].join('\n    ');
  return fail('key-permissions', problems.join('; '), fix);
}

/** True advice for a bigger store: a disk grows in place (guest/init), a store in RAM does not. */
function moreRoom(diskGiB: number): string {
  return diskGiB > 0
    ? `for more room raise diskGiB (now ${diskGiB}) in the config: the daemon restarts the VM and the guest grows its store, keeping what it holds`
    : 'for more room give the store a disk: set diskGiB in the config (the store moves from RAM to the disk and starts empty), or raise memoryMiB (the store in RAM takes half of it)';
}

function guestDisk(f: DoctorFacts): CheckResult {
  if (!f.guest.ok) return skip('guest-disk', 'not checked: no SSH connection to the guest');
  const r = parseGuestReport(f.guest.output);
  if (r.availKiB === null)
    return fail(
      'guest-disk',
      `could not read free space from the guest's df -Pk /nix`,
      'linuxkitctl logs --source console',
    );
  const freeMiB = Math.floor(r.availKiB / 1024);
  const min = f.expected.minFreeMiB;
  if (freeMiB >= min) return pass('guest-disk', `${freeMiB} MiB free in the guest's /nix (minimum ${min})`);
  return fail(
    'guest-disk',
    `only ${freeMiB} MiB free in the guest's /nix, below gc.minFreeMiB (${min}): builds will fail with "No space left on device"`,
    `collect garbage now: ssh ${f.expected.alias} nix-collect-garbage; ${moreRoom(f.expected.diskGiB)}`,
  );
}

function guestClock(f: DoctorFacts): CheckResult {
  if (!f.guest.ok) return skip('guest-clock', 'not checked: no SSH connection to the guest');
  const r = parseGuestReport(f.guest.output);
  if (r.clock === null)
    return fail(
      'guest-clock',
      'the guest did not print its clock (date +%s)',
      'linuxkitctl logs --source console',
    );
  const { hostSecondsBefore: before, hostSecondsAfter: after } = f.guest;
  const skew = r.clock - (before + after) / 2;
  // The guest prints whole seconds somewhere inside the round trip.
  const allowed = CLOCK_SKEW_LIMIT_S + (after - before) / 2 + 1;
  const shown = `${skew >= 0 ? '+' : ''}${skew.toFixed(1)} s`;
  if (Math.abs(skew) <= allowed)
    return pass('guest-clock', `guest clock is within ${CLOCK_SKEW_LIMIT_S} s of the host's (${shown})`);
  return fail(
    'guest-clock',
    `guest clock is off by ${shown} (the host slept, or the guest has no time sync): builds see wrong timestamps and TLS may fail`,
    'restart the builder so it takes the host clock at boot: linuxkitctl restart',
  );
}

function guestKvm(f: DoctorFacts): CheckResult | null {
  if (!f.expected.supportedFeatures.includes('kvm')) return null;
  if (!f.guest.ok) return skip('guest-kvm', 'not checked: no SSH connection to the guest');
  const r = parseGuestReport(f.guest.output);
  if (r.kvm) return pass('guest-kvm', 'the guest has /dev/kvm, as the kvm feature promises');
  return fail(
    'guest-kvm',
    'supportedFeatures lists kvm but the guest has no /dev/kvm: builds that need KVM will fail there',
    'remove kvm from supportedFeatures in the config, then run linuxkitctl install again',
  );
}

export function evaluateChecks(f: DoctorFacts): CheckResult[] {
  const e = f.expected;
  const out: CheckResult[] = [];
  if (!f.install.found)
    out.push(
      fail(
        'install',
        `no install manifest at ${f.install.manifestPath}`,
        'linuxkitctl install (add --user or --system if you installed the other kind)',
      ),
    );
  else if (f.install.configProblem)
    out.push(
      fail(
        'install',
        f.install.configProblem,
        'fix the config file; the daemon keeps its last good config until then',
      ),
    );
  else out.push(pass('install', `installed (${f.install.manifestPath})`));
  out.push(backendChoice(f));

  if (f.underRoot)
    out.push(skip('service-loaded', 'not checked under --root: no service manager is involved'));
  else if (!f.service.queried) out.push(skip('service-loaded', `not checked: ${f.service.reason}`));
  else if (f.service.loaded) out.push(pass('service-loaded', `the service is loaded (${f.service.command})`));
  else
    out.push(
      fail(
        'service-loaded',
        `the service is not loaded: ${f.service.command} said ${f.service.output || 'nothing'}`,
        f.service.startCommand,
      ),
    );
  out.push(serviceProgramCheck(f.host));
  const privacy = macosPrivacyCheck(f.host);
  if (privacy) out.push(privacy);

  if (f.daemon.ok)
    out.push(pass('daemon-answers', `linuxkitd answers on ${f.socketPath} (state ${f.daemon.state})`));
  else {
    const fix =
      f.daemon.code === 'EACCES' || f.daemon.code === 'EPERM'
        ? 'run doctor as the user the daemon runs as (sudo linuxkitctl doctor for a system install)'
        : `start it: ${f.daemonStartHint}; why it stopped is in ${f.daemonLog}`;
    out.push(
      fail('daemon-answers', `linuxkitd does not answer on ${f.socketPath}: ${f.daemon.message}`, fix),
    );
  }

  if (!f.daemon.ok) out.push(skip('builder-healthy', 'not checked: the daemon does not answer'));
  else if (f.daemon.healthy) out.push(pass('builder-healthy', 'the builder is healthy'));
  else {
    const why = f.daemon.probeError ? `: ${f.daemon.probeError}` : '';
    out.push(
      fail(
        'builder-healthy',
        `the builder is ${f.daemon.state}, not healthy${why}`,
        'linuxkitctl logs --source console shows the guest; linuxkitctl restart --wait',
      ),
    );
  }
  out.push(guestAccel(f));

  out.push(sshPortCheck(f.host));
  out.push(sshAlias(f));
  out.push(hostKey(f));
  out.push(machinesEntry(f));

  const b = checkBuilders({
    setting: f.builders.setting,
    nixConfDir: e.nixConfDir,
    machinesFile: e.machinesFile,
    managedByNixTool: f.builders.managedByNixTool,
    editFile: f.builders.editFile,
  });
  const also = f.builders.problems.length ? `; also: ${f.builders.problems.join('; ')}` : '';
  if (b.ok) out.push(pass('nix-builders', `${b.message}${also}`));
  else out.push(fail('nix-builders', `${b.message}${also}`, b.fix ?? ''));

  out.push(keyPermissions(f));
  out.push(guestDisk(f));
  out.push(guestClock(f));
  const kvm = guestKvm(f);
  if (kvm) out.push(kvm);
  return out;
}
