// Does the system ssh_config include our drop-in? Root's nix-daemon and the user both resolve
// the builder's alias through /etc/ssh/ssh_config, so the drop-in only works where that file
// includes /etc/ssh/ssh_config.d/. We never edit ssh_config: we say what line to add.

export interface SshIncludeCheck {
  included: boolean;
  /** The Include line that covers the drop-in, when one does. */
  line?: string;
  /** What to tell the user when it is not included. */
  problem?: string;
  /** The one line to add at the top of ssh_config. */
  fixLine?: string;
}

/** ssh_config words: whitespace separated, "double quoted" words may hold spaces. */
function words(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

/** glob(7) as ssh's Include uses it: `*`, `?` and `[...]` within one path component. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, close);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether `sshConfigText` (null: the file is missing) includes `dropInPath` for every host:
 * an Include before the first Host/Match line, or inside `Host *` / `Match all`. Relative
 * Include paths are relative to /etc/ssh, as for the system-wide file.
 */
export function checkSshInclude(
  sshConfigText: string | null,
  opts: { dropInPath: string; platform: 'darwin' | 'linux'; sshConfigPath?: string },
): SshIncludeCheck {
  const { dropInPath, platform } = opts;
  const dir = dropInPath.slice(0, dropInPath.lastIndexOf('/'));
  // macOS ships "Include /etc/ssh/ssh_config.d/*", Debian "…/*.conf"; both cover our .conf file.
  const fixLine = `Include ${dir}/${platform === 'darwin' ? '*' : '*.conf'}`;
  const sshConfig = opts.sshConfigPath ?? '/etc/ssh/ssh_config';
  if (sshConfigText === null) {
    return {
      included: false,
      problem: `${sshConfig} does not exist, so ssh never reads ${dropInPath}`,
      fixLine,
    };
  }
  let appliesToAll = true;
  for (const raw of sshConfigText.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    if (!m) continue;
    const keyword = m[1].toLowerCase();
    const args = words(m[2]);
    if (keyword === 'host') appliesToAll = args.length === 1 && args[0] === '*';
    else if (keyword === 'match') appliesToAll = args.length === 1 && args[0].toLowerCase() === 'all';
    else if (keyword === 'include' && appliesToAll) {
      for (const pattern of args) {
        const absolute = pattern.startsWith('/') ? pattern : `/etc/ssh/${pattern}`;
        if (globToRegExp(absolute).test(dropInPath)) return { included: true, line: raw.trim() };
      }
    }
  }
  return {
    included: false,
    problem: `${sshConfig} has no Include line covering ${dropInPath}, so ssh (and root's nix-daemon) will not know the alias`,
    fixLine,
  };
}
