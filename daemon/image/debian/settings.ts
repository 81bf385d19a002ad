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
  if (s.suites.length === 0)
    throw new Error('image.debian.suites is empty: name at least one suite, e.g. bookworm');
  return s.suites.map((suite) => {
    const security = suite.endsWith('-security');
    const base = s.snapshot
      ? s.snapshot.replace('{archive}', security ? 'debian-security' : 'debian')
      : security
        ? s.securityMirror
        : s.mirror;
    if (!/^https?:\/\//.test(base))
      throw new Error(
        `mirror URL ${JSON.stringify(base)} for suite ${suite} must start with http:// or https://`,
      );
    return { baseUrl: base.replace(/\/+$/, ''), suite };
  });
}

/** Debian's public mirror network: the default off Debian (a Mac) and when apt names no mirror. */
export const PUBLIC_MIRROR = 'http://deb.debian.org/debian';
export const PUBLIC_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';

/** `image.debian` as the config gives it: the mirrors may be left out. */
export interface DebianImageSetting {
  mirror?: string;
  securityMirror?: string;
  suites: string[];
  snapshot?: string;
}

/** The settings the builder runs with, and where each mirror came from (for the log and status). */
export interface ChosenDebianSettings {
  settings: DebianSettings;
  from: { mirror: string; securityMirror: string };
}

/**
 * The mirrors to build from: the config's when it names them; else the ones the host's apt uses
 * for the first configured suite (on a Debian host that is the mirror, or local proxy, it already
 * reaches); else Debian's public mirror.
 */
export function chooseDebianSettings(
  setting: DebianImageSetting,
  apt: { mirror: string | null; securityMirror: string | null; files: string },
): ChosenDebianSettings {
  const pick = (
    configured: string | undefined,
    fromApt: string | null,
    fallback: string,
  ): [string, string] =>
    configured
      ? [configured, 'image.debian in the config']
      : fromApt
        ? [fromApt, `apt sources (${apt.files})`]
        : [fallback, "Debian's public mirror (the default)"];
  const [mirror, mirrorFrom] = pick(setting.mirror, apt.mirror, PUBLIC_MIRROR);
  const [securityMirror, securityFrom] = pick(
    setting.securityMirror,
    apt.securityMirror,
    PUBLIC_SECURITY_MIRROR,
  );
  return {
    settings: {
      mirror,
      securityMirror,
      suites: setting.suites,
      ...(setting.snapshot ? { snapshot: setting.snapshot } : {}),
    },
    from: { mirror: mirrorFrom, securityMirror: securityFrom },
  };
}
