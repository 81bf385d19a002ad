// Human-readable output of linuxkitctl. Pure functions of the API's answers and the current
// time, so tests pin the wording without a daemon.
import type { DaemonStatus, DiskResetResponse, HealthResponse, StateEvent } from './api-client.js';

/** 42s, 5m, 2h5m, 3d4h: short enough for one status line. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60 ? `${m % 60}m` : ''}`;
  const d = Math.floor(h / 24);
  return `${d}d${h % 24 ? `${h % 24}h` : ''}`;
}

function since(iso: string, now: Date): string {
  return formatDuration(now.getTime() - Date.parse(iso));
}

/**
 * `builder: running (healthy)  backend qemu/tcg  guest x86_64  pid 1234 up 5m  ready in 5.2s  restarts 0  probe 612 ms  Nix 2.8.0`
 * (ready in: the boot's time to the first Nix answer; probe: the latest Nix probe's own round trip),
 * then one line for each thing that needs attention: desired state, failure, backoff, probe
 * error, last exit, current errors.
 */
export function formatStatus(s: DaemonStatus, now: Date): string {
  const parts = [
    `builder: ${s.state} (${s.healthy ? 'healthy' : 'not healthy'})`,
    `backend ${s.backend}/${s.accel}`,
    `guest ${s.arch}`,
  ];
  if (s.vm.pid !== null) {
    const adopted = s.vm.adopted ? ' (adopted)' : '';
    parts.push(`pid ${s.vm.pid}${adopted}${s.vm.startedAt ? ` up ${since(s.vm.startedAt, now)}` : ''}`);
    if (s.vm.bootToReadyMs !== null) parts.push(`ready in ${(s.vm.bootToReadyMs / 1000).toFixed(1)}s`);
  } else {
    parts.push('no VM');
  }
  parts.push(`restarts ${s.restarts}`);
  if (s.probe.ok && s.probe.latencyMs !== null) parts.push(`probe ${Math.round(s.probe.latencyMs)} ms`);
  if (s.probe.nixVersion) parts.push(`Nix ${s.probe.nixVersion}`);

  const lines = [parts.join('  ')];
  if (s.desired === 'stopped') lines.push('  desired: stopped (linuxkitctl start to run it again)');
  if (s.onDemand && s.desired === 'running') lines.push(`  on demand: ${formatOnDemand(s.onDemand, now)}`);
  if (s.image) lines.push(`  image: ${formatImageBuild(s.image, now)}`);
  if (s.failedReason) lines.push(`  failed: ${s.failedReason}`);
  if (s.backoff) {
    const next = s.backoff.nextStartAt
      ? `, next start in ${formatDuration(Date.parse(s.backoff.nextStartAt) - now.getTime())}`
      : '';
    lines.push(`  backoff: attempt ${s.backoff.attempt}${next}`);
  }
  if (!s.probe.ok && s.probe.error) lines.push(`  probe: ${s.probe.error}`);
  if (s.lastExit) {
    const how = s.lastExit.signal
      ? `signal ${s.lastExit.signal}`
      : s.lastExit.code !== null
        ? `code ${s.lastExit.code}`
        : 'code unknown';
    lines.push(`  last exit: ${s.lastExit.reason} (${how}) ${since(s.lastExit.at, now)} ago`);
  }
  for (const e of s.errors) lines.push(`  error (${e.source}): ${e.message}`);
  return lines.join('\n');
}

/**
 * `awake (woken by a connection from 127.0.0.1:50412 3m ago), 2 connections open` or
 * `asleep: the next connection starts the VM` or `awake ..., idle stop in 12m`.
 */
export function formatOnDemand(d: NonNullable<DaemonStatus['onDemand']>, now: Date): string {
  const parts: string[] = [];
  if (!d.awake) parts.push('asleep: the next connection starts the VM');
  else
    parts.push(
      `awake (woken by ${d.wokenBy ?? 'unknown'}${d.wokenAt ? ` ${since(d.wokenAt, now)} ago` : ''})`,
    );
  if (d.openConnections > 0)
    parts.push(`${d.openConnections} connection${d.openConnections === 1 ? '' : 's'} open`);
  if (d.heldConnections > 0) parts.push(`${d.heldConnections} waiting for the VM`);
  if (d.idleStopAt) parts.push(`idle stop in ${formatDuration(Date.parse(d.idleStopAt) - now.getTime())}`);
  let text = parts.join(', ');
  if (d.lastFailure)
    text += `\n  on demand, last failure ${since(d.lastFailure.at, now)} ago: ${d.lastFailure.reason}`;
  return text;
}

/** `building the guest image for 42s: 23 packages (41.2 MiB) unpacked; unpacking nix-bin 2.8.0-1` */
export function formatImageBuild(b: NonNullable<DaemonStatus['image']>, now: Date): string {
  const done = b.packages > 0 ? `: ${b.packages} packages (${(b.bytes / 2 ** 20).toFixed(1)} MiB) read` : '';
  return `building the guest image for ${since(b.startedAt, now)}${done}; ${b.message}`;
}

export function formatHealth(h: HealthResponse): string {
  return h.healthy ? `healthy (${h.state})` : `not healthy (${h.state}): ${h.reason}`;
}

/** `2025-01-01T00:00:00.000Z  state    running -> stopping  stop requested` */
export function formatEvent(e: StateEvent): string {
  const transition = e.from && e.state ? `${e.from} -> ${e.state}` : (e.state ?? '');
  return [e.at, e.type.padEnd(7), transition, e.message].filter((p) => p !== '').join('  ');
}

export function formatAccepted(action: string, s: DaemonStatus): string {
  const vm = s.vm.pid !== null ? `, VM pid ${s.vm.pid}` : '';
  return `${action} accepted (builder ${s.state}${vm})`;
}

/** `disk reset`: what was removed and what happens next. */
export function formatDiskReset(r: DiskResetResponse): string {
  if (r.removedBytes === null) return `no store disk at ${r.path}: nothing to reset`;
  const gib = r.removedBytes / 1024 ** 3;
  const size = Number.isInteger(gib) ? String(gib) : gib.toFixed(2);
  return `removed the store disk ${r.path} (${size} GiB); the next start formats a new, empty store`;
}

/** One builder as `status --all` found it: its status, or why its daemon did not answer. */
export interface BuilderStatusEntry {
  /** null: the default builder. */
  builder: string | null;
  socketPath: string;
  status?: DaemonStatus;
  error?: string;
}

/**
 * `status --all`: each builder's status under a `[name]` heading (`[default]` for the unnamed
 * one), in the order given; a daemon that does not answer gets its reason instead.
 */
export function formatStatusAll(entries: BuilderStatusEntry[], now: Date): string {
  return entries
    .map((e) => {
      const heading = `[${e.builder ?? 'default'}] ${e.socketPath}`;
      const body = e.status
        ? formatStatus(e.status, now)
        : `builder: not reachable: ${e.error ?? 'no answer'}`;
      return `${heading}\n${body}`;
    })
    .join('\n');
}
