// The daemon's settings: one schema for the config file, the flags and the API (fastify).
// Every property is required in the effective config; the file may omit any of them and
// load.ts fills the defaults. `default` here is the static default; `arch`, `systems` and
// `maxJobs` depend on the host or on other settings and are filled in by load.ts.
import { Type, type Static } from '@sinclair/typebox';
import { DEFAULT_SUITES } from '../image/debian/settings.js';
import { backendNames } from '../backends/backend-list.js';

const strict = { additionalProperties: false } as const;

const ms = (minimum: number, maximum: number, def: number, description: string) =>
  Type.Integer({ minimum, maximum, default: def, description });

// The names come from the backend registry: a new backend is offered here without an edit.
export const BackendSettingSchema = Type.Union(
  [Type.Literal('auto'), ...backendNames().map((name) => Type.Literal(name))],
  {
    default: 'auto',
    description: 'Hypervisor; auto picks the preferred backend that runs on this host (docs/backends.md)',
  },
);

export const AccelSettingSchema = Type.Union(
  [Type.Literal('auto'), Type.Literal('hvf'), Type.Literal('kvm'), Type.Literal('tcg')],
  {
    default: 'auto',
    description:
      'Accelerator; auto picks hvf on macOS when kern.hv_support is 1, kvm where /dev/kvm is usable, else tcg',
  },
);

export const GuestAslrSettingSchema = Type.Union(
  [Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')],
  {
    default: 'auto',
    description:
      "Address-space layout randomization in the guest. auto: off under tcg, on with hvf and kvm. Under tcg QEMU translates a program's code again at each new address, so with it on every exec in the guest is ~4x slower (docs/guest-image.md)",
  },
);

export const GuestArchSchema = Type.Union([Type.Literal('x86_64'), Type.Literal('aarch64')], {
  description: "Guest architecture; default: the host's own on macOS, x86_64 elsewhere",
});

const mirrorUrl = (description: string) =>
  Type.Optional(
    Type.String({ pattern: '^https?://[^\\s]+$', examples: ['http://deb.debian.org/debian'], description }),
  );

export const DebianImageSettingsSchema = Type.Object(
  {
    mirror: mirrorUrl("Debian archive (…/debian); default: the host's apt mirror, else deb.debian.org"),
    securityMirror: mirrorUrl('Debian security archive (…/debian-security); default as for mirror'),
    suites: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9-]*$' }), {
      minItems: 1,
      uniqueItems: true,
      default: DEFAULT_SUITES,
      description: 'Suites the guest image is resolved from; -security suites come from securityMirror',
    }),
    snapshot: Type.Optional(
      Type.String({
        pattern: '^https?://[^\\s]+$',
        examples: ['http://snapshot.debian.org/archive/{archive}/20250520T000000Z'],
        description:
          'Pins the resolution in time: replaces both mirrors, {archive} becomes debian or debian-security',
      }),
    ),
  },
  { ...strict, default: {}, description: 'Where the guest image is built from (docs/guest-image.md)' },
);

export const ImageSettingsSchema = Type.Object(
  {
    debian: DebianImageSettingsSchema,
    kernel: Type.Optional(
      Type.String({ pattern: '^/', examples: ['/opt/builder/bzImage'], description: 'Absolute path' }),
    ),
    initrd: Type.Optional(
      Type.String({ pattern: '^/', examples: ['/opt/builder/initrd'], description: 'Absolute path' }),
    ),
    cmdline: Type.Optional(Type.String({ description: 'Kernel command line' })),
  },
  { ...strict, default: {}, description: 'Absent fields mean the built-in guest image' },
);

export const RestartPolicySchema = Type.Object(
  {
    initialDelayMs: ms(0, 3_600_000, 1000, 'Delay before the first restart after a crash'),
    maxDelayMs: ms(0, 86_400_000, 60_000, 'Cap of the doubling restart delay'),
    multiplier: Type.Number({ minimum: 1, maximum: 10, default: 2 }),
    jitter: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.2,
      description: 'Fraction of the delay added at random',
    }),
    maxAttempts: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 5,
      description: 'Consecutive failed starts before the state becomes failed',
    }),
    stablePeriodMs: ms(0, 86_400_000, 60_000, 'Healthy this long resets the backoff'),
  },
  { ...strict, default: {} },
);

export const ProbeSettingsSchema = Type.Object(
  {
    intervalMs: ms(
      1000,
      3_600_000,
      15_000,
      'Time between health checks while healthy: the SSH banner, or the Nix probe when due',
    ),
    nixIntervalMs: ms(
      1000,
      86_400_000,
      300_000,
      'Time between full probes (nix-store over SSH) while healthy',
    ),
    timeoutMs: ms(100, 600_000, 10_000, 'One probe gives up after this long'),
    bootGraceMs: ms(
      0,
      3_600_000,
      120_000,
      'Failing probes after a start are expected this long (tcg is slow)',
    ),
    degradedRestartMs: ms(
      0,
      86_400_000,
      180_000,
      'Probe failing this long while the process is up restarts the VM',
    ),
  },
  { ...strict, default: {} },
);

export const ModeSettingSchema = Type.Union([Type.Literal('always'), Type.Literal('on-demand')], {
  default: 'always',
  description:
    'always: the VM runs while the builder is started; on-demand: the first SSH connection starts it and idleness stops it (docs/on-demand.md)',
});

export const OnDemandSettingsSchema = Type.Object(
  {
    idleStopAfterMs: ms(
      1000,
      86_400_000,
      900_000,
      'With no connection to the builder this long, the VM is powered off (on-demand mode)',
    ),
    connectTimeoutMs: ms(
      1000,
      3_600_000,
      600_000,
      'A connection waits this long for the VM to be ready, then is closed (a first start may build the guest image)',
    ),
  },
  { ...strict, default: {} },
);

export const GcSettingsSchema = Type.Object(
  {
    minFreeMiB: Type.Integer({
      minimum: 0,
      maximum: 1_048_576,
      default: 256,
      description: 'Collect garbage below this',
    }),
    maxFreeMiB: Type.Integer({
      minimum: 0,
      maximum: 1_048_576,
      default: 1024,
      description: 'Until this much is free',
    }),
  },
  { ...strict, default: {} },
);

export const DaemonConfigSchema = Type.Object(
  {
    backend: BackendSettingSchema,
    accel: AccelSettingSchema,
    arch: GuestArchSchema,
    cpus: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
    memoryMiB: Type.Integer({ minimum: 256, maximum: 262_144, default: 2048 }),
    diskGiB: Type.Integer({
      minimum: 0,
      maximum: 2048,
      default: 0,
      description:
        "Size of the guest's store disk (<state dir>/nix-disk.raw); 0 keeps the store in RAM. Raising it grows the store at the next boot; a lower value than the disk is refused (linuxkitctl disk reset starts over)",
    }),
    ephemeral: Type.Boolean({
      default: false,
      description:
        "A fresh, empty store disk at every boot (the last boot's store is removed at start); with diskGiB 0 the store in RAM is fresh anyway",
    }),
    guestAslr: GuestAslrSettingSchema,
    sshPort: Type.Integer({
      minimum: 1024,
      maximum: 65_535,
      default: 31_122,
      description: 'On 127.0.0.1 only',
    }),
    mode: ModeSettingSchema,
    onDemand: OnDemandSettingsSchema,
    sshUser: Type.String({ pattern: '^[a-z_][a-z0-9_-]{0,31}$', default: 'root', examples: ['root'] }),
    image: ImageSettingsSchema,
    systems: Type.Array(Type.String({ pattern: '^[a-z0-9_]+-[a-z0-9_]+$', examples: ['x86_64-linux'] }), {
      minItems: 1,
      uniqueItems: true,
      description: 'Nix systems the builder offers; default: <arch>-linux',
    }),
    supportedFeatures: Type.Array(
      Type.String({ pattern: '^[A-Za-z0-9_.+-]+$', examples: ['big-parallel'] }),
      {
        uniqueItems: true,
        default: ['benchmark', 'big-parallel'],
      },
    ),
    maxJobs: Type.Integer({ minimum: 1, maximum: 1024, description: 'Default: cpus' }),
    speedFactor: Type.Integer({ minimum: 1, maximum: 1000, default: 1 }),
    restart: RestartPolicySchema,
    probe: ProbeSettingsSchema,
    stopGraceMs: ms(0, 600_000, 20_000, 'How long the guest gets to power off through ACPI'),
    onSigterm: Type.Union([Type.Literal('stop'), Type.Literal('leave')], {
      default: 'stop',
      description: 'stop powers the VM off; leave keeps it running for the next daemon to adopt',
    }),
    gc: GcSettingsSchema,
  },
  strict,
);

export type DaemonConfig = Static<typeof DaemonConfigSchema>;
export type BackendSetting = Static<typeof BackendSettingSchema>;
export type AccelSetting = Static<typeof AccelSettingSchema>;
export type GuestAslrSetting = Static<typeof GuestAslrSettingSchema>;
export type RestartPolicy = Static<typeof RestartPolicySchema>;
export type ProbeSettings = Static<typeof ProbeSettingsSchema>;
export type ModeSetting = Static<typeof ModeSettingSchema>;

/** A problem with the config file, a flag or an override, naming the key it concerns. */
export interface ConfigError {
  /** Dotted key path (`restart.maxDelayMs`), a flag (`--cpus`), or '' for the whole file. */
  key: string;
  message: string;
  /** For JSON syntax errors: 1-based position in the file. */
  line?: number;
  column?: number;
}

export type ConfigResult = { ok: true; config: DaemonConfig } | { ok: false; errors: ConfigError[] };
