// The systemd unit for linuxkitd on Linux: /etc/systemd/system/linuxkit-nix.service, or the
// user's unit folder with --user. Same spec as the launchd job (daemon-service.ts).
import type { DaemonServiceSpec } from './daemon-service.js';

/**
 * One word of ExecStart= or Environment=: systemd expands %specifiers and $VARIABLES there and
 * splits on whitespace, so '%' becomes '%%', '$' becomes '$$', and words with spaces, quotes or
 * backslashes are double-quoted with C escapes.
 */
export function systemdWord(word: string): string {
  if (/[\0\n]/.test(word))
    throw new Error(`cannot put ${JSON.stringify(word)} in a systemd unit: it has a NUL or newline`);
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (escaped !== '' && !/[\s"'\\;]/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function renderSystemdUnit(spec: DaemonServiceSpec): string {
  const system = spec.scope === 'system';
  const env = Object.entries(spec.environment).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw new Error(`environment variable name ${JSON.stringify(k)} is not valid in a systemd unit`);
    return `Environment=${systemdWord(`${k}=${v}`)}`;
  });
  return [
    '[Unit]',
    `Description=${spec.description}`,
    ...(system ? ['After=network.target'] : []),
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${spec.programArguments.map(systemdWord).join(' ')}`,
    ...env,
    'Restart=always',
    `RestartSec=${spec.restartDelaySec}`,
    // Only the daemon is signalled: the VM runs in its own session and a new daemon adopts it.
    'KillMode=process',
    `TimeoutStopSec=${spec.stopTimeoutSec}`,
    '',
    '[Install]',
    `WantedBy=${system ? 'multi-user.target' : 'default.target'}`,
    '',
  ].join('\n');
}

/** The words of a line of systemdWord()s, back as they were (only what renderSystemdUnit writes). */
export function parseSystemdWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (/\s/.test(line[i])) {
      i++;
      continue;
    }
    let word = '';
    if (line[i] === '"') {
      i++;
      for (; i < line.length && line[i] !== '"'; i++) word += line[i] === '\\' ? line[++i] : line[i];
      if (i >= line.length) throw new Error(`unterminated quote in ${JSON.stringify(line)}`);
      i++;
    } else {
      for (; i < line.length && !/\s/.test(line[i]); i++) word += line[i];
    }
    words.push(word.replace(/%%/g, '%').replace(/\$\$/g, '$'));
  }
  return words;
}

/**
 * The command line and environment of a unit renderSystemdUnit wrote, as systemd would run it:
 * tests start the daemon exactly so, and a person can read back what the service runs.
 */
export function parseSystemdUnit(text: string): { execStart: string[]; environment: Record<string, string> } {
  let execStart: string[] | null = null;
  const environment: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(ExecStart|Environment)=(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === 'ExecStart') execStart = parseSystemdWords(m[2]);
    else {
      for (const word of parseSystemdWords(m[2])) {
        const eq = word.indexOf('=');
        if (eq > 0) environment[word.slice(0, eq)] = word.slice(eq + 1);
      }
    }
  }
  if (!execStart || execStart.length === 0) throw new Error('the unit has no ExecStart= line');
  return { execStart, environment };
}
