// Free space in the guest's Nix store, and when to collect garbage there. Pure: the runner
// (guest-maintenance.ts) fetches `df -Pk /nix/store` over SSH and acts on the decision.

export interface StoreSpace {
  filesystem: string;
  sizeKiB: number;
  usedKiB: number;
  availableKiB: number;
  mountedOn: string;
}

// "tmpfs   503264   1024   502240   1% /nix": POSIX output is one line per filesystem, never
// wrapped; the name and the mount point may hold spaces, the four numbers never do.
const DF_LINE = /^(.*?\S)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+%|-)\s+(\/.*)$/;

/** Parses `df -Pk <path>` output (busybox or GNU); throws naming what it got when it cannot. */
export function parseDfOutput(output: string): StoreSpace {
  const lines = output
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
  const header = lines.findIndex((l) => /^Filesystem\s/.test(l));
  if (header < 0) throw new Error(`df printed no header line: ${JSON.stringify(output.slice(0, 200))}`);
  if (!/\b1024-blocks\b|\b1K-blocks\b/i.test(lines[header])) {
    throw new Error(`df did not count in KiB (run it with -Pk): ${JSON.stringify(lines[header])}`);
  }
  const row = lines[header + 1];
  const m = row === undefined ? null : DF_LINE.exec(row);
  if (!m)
    throw new Error(
      `df printed no filesystem line after its header: ${JSON.stringify(output.slice(0, 200))}`,
    );
  return {
    filesystem: m[1],
    sizeKiB: Number(m[2]),
    usedKiB: Number(m[3]),
    availableKiB: Number(m[4]),
    mountedOn: m[6],
  };
}

export interface GcThresholds {
  /** Collect garbage when less than this is free. 0 turns collection off. */
  minFreeMiB: number;
  /** Collect until this much is free (at least minFreeMiB). */
  maxFreeMiB: number;
}

export type GcDecision =
  | { collect: false; reason: string }
  | { collect: true; reason: string /** For `nix-store --gc --max-freed`. */; maxFreedBytes: number };

const MiB = 1024 * 1024;

/** Nix's own min-free/max-free rule, applied from the host: below min, free up to max. */
export function decideGc(space: Pick<StoreSpace, 'availableKiB'>, t: GcThresholds): GcDecision {
  const freeMiB = space.availableKiB / 1024;
  if (t.minFreeMiB <= 0) return { collect: false, reason: 'garbage collection is off (gc.minFreeMiB is 0)' };
  if (freeMiB >= t.minFreeMiB) {
    return { collect: false, reason: `${formatMiB(freeMiB)} free, at least ${t.minFreeMiB} MiB wanted` };
  }
  const target = Math.max(t.maxFreeMiB, t.minFreeMiB);
  const maxFreedBytes = Math.max(1, Math.ceil(target * MiB - space.availableKiB * 1024));
  return {
    collect: true,
    reason: `only ${formatMiB(freeMiB)} free in the guest store, below gc.minFreeMiB ${t.minFreeMiB} MiB`,
    maxFreedBytes,
  };
}

/** The guest command for a decision to collect. */
export function gcCommand(d: Extract<GcDecision, { collect: true }>): string {
  return `nix-store --gc --max-freed ${d.maxFreedBytes}`;
}

/** "3 store paths deleted, 150.00 MiB freed" from nix-store --gc's output; null when absent. */
export function parseGcSummary(output: string): { paths: number; freed: string } | null {
  const m = /(\d+) store paths deleted, ([\d.]+ [KMGT]?i?B) freed/.exec(output);
  return m ? { paths: Number(m[1]), freed: m[2] } : null;
}

export function formatMiB(mib: number): string {
  return `${mib >= 100 ? Math.round(mib) : Math.round(mib * 10) / 10} MiB`;
}
