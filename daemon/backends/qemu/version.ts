// Which QEMU this backend can drive, checked before every start: `qemu-system-* --version`
// against the oldest release whose behaviour the command line relies on (args.ts).
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { VmSpec } from '../../backend.js';
import { locateOnPath } from './locate.js';

const execFileAsync = promisify(execFile);

export interface QemuVersion {
  major: number;
  minor: number;
  micro: number;
}

export interface QemuRequirement {
  minimum: QemuVersion;
  /** Why that release, in a few words (shown in the error). */
  why: string;
}

/** Reads "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)"; null when there is no version. */
export function parseQemuVersion(output: string): QemuVersion | null {
  const m = /\bversion (\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  return m ? { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3] ?? 0) } : null;
}

export const formatQemuVersion = (v: QemuVersion): string => `${v.major}.${v.minor}.${v.micro}`;

export function compareQemuVersions(a: QemuVersion, b: QemuVersion): number {
  return a.major - b.major || a.minor - b.minor || a.micro - b.micro;
}

/** The oldest QEMU for this guest architecture and accelerator. */
export function requiredQemuVersion(spec: Pick<VmSpec, 'arch' | 'accel'>): QemuRequirement {
  if (spec.arch === 'aarch64' && spec.accel === 'hvf') {
    return {
      minimum: { major: 9, minor: 2, micro: 3 },
      why:
        'on an Apple M4 (SME) older releases abort on `-cpu host` under hvf (QEMU issue #2665, fixed in 9.2.3 and 10.0), ' +
        'and before 7.0 the `virt` machine needed highmem=off, which caps the guest at 3 GiB',
    };
  }
  return {
    minimum: { major: 7, minor: 0, micro: 0 },
    why: 'the command line is written for QEMU 7.0 and later (the `virt` memory map without highmem=off, `-accel`, pvpanic-pci)',
  };
}

/**
 * A QEMU too old for the VM: every start would fail the same way until it is upgraded, so the
 * error says so (`permanent`) instead of inviting retries.
 */
export class QemuTooOldError extends Error {
  readonly permanent = true;
  constructor(
    readonly found: QemuVersion,
    readonly requirement: QemuRequirement,
    readonly executable: string,
    spec: Pick<VmSpec, 'arch' | 'accel'>,
  ) {
    super(
      `${executable} is QEMU ${formatQemuVersion(found)}, too old for an ${spec.arch} guest with ${spec.accel}: ` +
        `QEMU ${formatQemuVersion(requirement.minimum)} or later is needed (${requirement.why}); ` +
        "install a newer QEMU first on the daemon's PATH (e.g. `brew upgrade qemu`), then run `linuxkitctl start`",
    );
    this.name = 'QemuTooOldError';
  }
}

export function assertSupportedQemu(
  found: QemuVersion,
  executable: string,
  spec: Pick<VmSpec, 'arch' | 'accel'>,
): void {
  const requirement = requiredQemuVersion(spec);
  if (compareQemuVersions(found, requirement.minimum) < 0)
    throw new QemuTooOldError(found, requirement, executable, spec);
}

export interface QemuVersionReport {
  /** Where the binary was found (the name itself when it is not on PATH). */
  executable: string;
  version: QemuVersion | null;
  /** The first line of `--version`, for a log line when it holds no version. */
  firstLine: string;
}

/** Runs `<qemu> --version`; throws when the binary cannot run at all. */
export async function readQemuVersion(
  qemu: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<QemuVersionReport> {
  const executable = (await locateOnPath(qemu, env)) ?? qemu;
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync(qemu, ['--version'], { env, timeout: 10_000 }));
  } catch (err) {
    throw new Error(`cannot run QEMU ${JSON.stringify(qemu)}: ${(err as Error).message}`, { cause: err });
  }
  return { executable, version: parseQemuVersion(stdout), firstLine: stdout.split('\n')[0].trim() };
}

const reportsByFile = new Map<string, QemuVersionReport>();

/**
 * readQemuVersion, run again only when the executable's file changes (an upgrade, another file on
 * PATH): every start then costs a stat instead of a QEMU process (~60 ms).
 */
export async function readQemuVersionOnce(
  qemu: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<QemuVersionReport> {
  const executable = (await locateOnPath(qemu, env)) ?? qemu;
  const file = await stat(executable).catch(() => null);
  if (!file) return readQemuVersion(qemu, env);
  const key = [executable, file.dev, file.ino, file.size, file.mtimeMs].join('\0');
  const known = reportsByFile.get(key);
  if (known) return known;
  const report = await readQemuVersion(qemu, env);
  reportsByFile.set(key, report);
  return report;
}
