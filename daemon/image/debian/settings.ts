// Where the image's packages come from: settings `image.debian.{mirror,securityMirror,suites,snapshot}`.
import type { SuiteSource } from './archive.js';

export interface DebianSettings {
  /** The archive's base URL (…/debian). */
  mirror: string;
  /** The security archive's base URL (…/debian-security); suites ending in -security come from it. */
  securityMirror: string;
  suites: string[];
  /**
   * A snapshot archive's base URL holding `debian/<timestamp>`-style trees, e.g.
   * `<snapshot host>/archive/{archive}/20250520T000000Z`: `{archive}` becomes debian or
   * debian-security. When set it replaces both mirrors, pinning the resolution in time.
   */
  snapshot?: string;
}

export const DEFAULT_SUITES = ['bookworm', 'bookworm-updates', 'bookworm-security'];

export function suiteSources(s: DebianSettings): SuiteSource[] {
  if (s.suites.length === 0) throw new Error('image.debian.suites is empty: name at least one suite, e.g. bookworm');
  return s.suites.map((suite) => {
    const security = suite.endsWith('-security');
    const base = s.snapshot
      ? s.snapshot.replace('{archive}', security ? 'debian-security' : 'debian')
      : security
        ? s.securityMirror
        : s.mirror;
    if (!/^https?:\/\//.test(base)) throw new Error(`mirror URL ${JSON.stringify(base)} for suite ${suite} must start with http:// or https://`);
    return { baseUrl: base.replace(/\/+$/, ''), suite };
  });
}
