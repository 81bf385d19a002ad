// Which file `spawn` runs for a QEMU binary name: what its version and its firmware are read from.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';

/** The file spawn would run for `name`: the first executable match on PATH. */
export async function locateOnPath(name: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  if (name.includes('/')) return isAbsolute(name) ? name : null;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return null;
}
