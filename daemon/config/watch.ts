// Follows edits of the config file. An invalid edit never replaces the config in force: the
// daemon keeps running on the last good one and shows the error until the file is fixed.
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { SerialRuns, WatchedFiles } from '../fs/watched-files.js';
import { configChangeNeedsRestart, type ConfigDiff } from './diff.js';
import { applyOverrides, currentHost, loadConfigFile, type HostInfo } from './load.js';
import type { ConfigError, DaemonConfig } from './schema.js';

export interface ConfigWatcherOptions {
  /** The config file to follow. */
  path: string;
  /** The config in force now, as loaded at startup (with overrides applied). */
  initial: DaemonConfig;
  /** Flags that override the file, applied again on every reload. */
  overrides?: Partial<DaemonConfig>;
  host?: HostInfo;
  /** Quiet time after the last file event before re-reading; editors write in bursts. */
  debounceMs?: number;
}

export interface ConfigChangeEvent {
  config: DaemonConfig;
  previous: DaemonConfig;
  diff: ConfigDiff;
}

export interface ConfigInvalidEvent {
  errors: ConfigError[];
  /** ISO time the invalid file was read. */
  at: string;
}

export type ReloadOutcome =
  | ({ kind: 'changed' } & ConfigChangeEvent)
  | { kind: 'unchanged'; config: DaemonConfig }
  | ({ kind: 'invalid' } & ConfigInvalidEvent);

export interface ConfigWatcherEvents {
  /** A valid config that differs from the one in force; `current` is already the new one. */
  change: [ConfigChangeEvent];
  /** The file cannot be used; `current` stays the last good config. */
  invalid: [ConfigInvalidEvent];
  /** The file is valid again but equals the config in force, so only `lastError` cleared. */
  recovered: [{ config: DaemonConfig }];
  /** The file watcher itself failed (emitted only when someone listens). */
  error: [Error];
}

export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  readonly path: string;
  private currentConfig: DaemonConfig;
  private lastInvalid: ConfigInvalidEvent | null = null;
  private readonly overrides: Partial<DaemonConfig>;
  private readonly host: HostInfo;
  private readonly files: WatchedFiles;
  private readonly reloads = new SerialRuns();
  private closed = false;

  constructor(opts: ConfigWatcherOptions) {
    super();
    this.path = path.resolve(opts.path);
    this.currentConfig = opts.initial;
    this.overrides = opts.overrides ?? {};
    this.host = opts.host ?? currentHost();
    this.files = new WatchedFiles({
      debounceMs: opts.debounceMs ?? 100,
      onSettled: () => void this.reload(),
      onError: (err) => {
        if (this.listenerCount('error') > 0) this.emit('error', err as Error);
      },
    });
  }

  /** The last good config. */
  get current(): DaemonConfig {
    return this.currentConfig;
  }

  /** Why the file on disk is not in force, until a valid file is read. */
  get lastError(): ConfigInvalidEvent | null {
    return this.lastInvalid;
  }

  /**
   * Starts watching; resolves once the watcher is ready. The parent directory is watched,
   * filtered to the file, so an editor that replaces the file by rename is still followed.
   */
  async start(): Promise<void> {
    await this.files.follow([this.path]);
  }

  /**
   * Re-reads the file now (SIGHUP) and emits as a file change would. Reloads run one at a time,
   * in order, so events never report a stale `previous`.
   */
  reload(): Promise<ReloadOutcome> {
    return this.reloads.run(() => this.reloadNow());
  }

  private async reloadNow(): Promise<ReloadOutcome> {
    const loaded = await loadConfigFile(this.path, this.host);
    const result = loaded.ok ? applyOverrides(loaded.config, this.overrides) : loaded;
    if (!result.ok) {
      const event: ConfigInvalidEvent = { errors: result.errors, at: new Date().toISOString() };
      this.lastInvalid = event;
      if (!this.closed) this.emit('invalid', event);
      return { kind: 'invalid', ...event };
    }
    const config = result.config;
    const wasInvalid = this.lastInvalid !== null;
    this.lastInvalid = null;
    if (isDeepStrictEqual(config, this.currentConfig)) {
      if (wasInvalid && !this.closed) this.emit('recovered', { config });
      return { kind: 'unchanged', config };
    }
    const previous = this.currentConfig;
    this.currentConfig = config;
    const event: ConfigChangeEvent = { config, previous, diff: configChangeNeedsRestart(previous, config) };
    if (!this.closed) this.emit('change', event);
    return { kind: 'changed', ...event };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.files.close();
  }
}
