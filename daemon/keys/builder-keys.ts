// The per-install key pair the host uses to log in to the builder, and the builder's own SSH host
// key. Both are generated on the host before the first boot: the host key reaches the guest through
// QEMU fw_cfg (or the HyperKit image), so it is known, and pinned, before the first connection.
import { execFile } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface BuilderKeyPaths {
  dir: string;
  /** Private key Nix and the daemon log in with (OpenSSH format, 0600). */
  clientKey: string;
  clientPublicKey: string;
  /** The guest's SSH host key (OpenSSH format, 0600), handed to the guest at boot. */
  hostKey: string;
  hostPublicKey: string;
}

export function builderKeyPaths(dir: string): BuilderKeyPaths {
  return {
    dir,
    clientKey: join(dir, 'client_ed25519'),
    clientPublicKey: join(dir, 'client_ed25519.pub'),
    hostKey: join(dir, 'ssh_host_ed25519_key'),
    hostPublicKey: join(dir, 'ssh_host_ed25519_key.pub'),
  };
}

export interface BuilderKeys extends BuilderKeyPaths {
  /** The public key lines, e.g. "ssh-ed25519 AAAA... linuxkit-nix host". */
  clientPublicKeyLine: string;
  hostPublicKeyLine: string;
  generated: boolean;
}

/**
 * Makes sure both ed25519 key pairs exist in `dir` (0700), generating the missing ones with
 * ssh-keygen. Existing keys are never replaced: the host key is pinned in Nix's machines file.
 * Private keys are 0600; modes are corrected if something loosened them.
 */
export async function ensureBuilderKeys(
  dir: string,
  opts: { sshKeygen?: string } = {},
): Promise<BuilderKeys> {
  const paths = builderKeyPaths(dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  let generated = false;
  for (const [priv, comment] of [
    [paths.clientKey, 'linuxkit-nix client'],
    [paths.hostKey, 'linuxkit-nix host'],
  ] as const) {
    if (await exists(priv)) {
      await chmod(priv, 0o600);
      if (!(await exists(`${priv}.pub`))) {
        throw new Error(
          `key ${priv} has no public half ${priv}.pub: restore it or delete both to make a new pair`,
        );
      }
      continue;
    }
    await generateKeyPair(priv, comment, opts.sshKeygen ?? 'ssh-keygen');
    generated = true;
  }
  return {
    ...paths,
    clientPublicKeyLine: (await readFile(paths.clientPublicKey, 'utf8')).trim(),
    hostPublicKeyLine: (await readFile(paths.hostPublicKey, 'utf8')).trim(),
    generated,
  };
}

/** Generates into a private temporary folder, then renames: a crash never leaves half a pair. */
async function generateKeyPair(privatePath: string, comment: string, sshKeygen: string): Promise<void> {
  const dir = privatePath.slice(0, privatePath.lastIndexOf('/'));
  const tmp = await mkdtemp(join(dir, '.keygen-'));
  try {
    const tmpKey = join(tmp, 'key');
    try {
      await run(sshKeygen, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', tmpKey]);
    } catch (err) {
      throw new Error(`could not generate an ed25519 key with ${sshKeygen}: ${(err as Error).message}`);
    }
    await chmod(tmpKey, 0o600);
    await chmod(`${tmpKey}.pub`, 0o644);
    // Two processes may generate at once (install and a first daemon start). Whoever links the
    // public half first owns the pair; the other drops its own and waits for the winner's key,
    // so a private key never sits next to another pair's public half.
    try {
      await link(`${tmpKey}.pub`, `${privatePath}.pub`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      for (let i = 0; i < 100 && !(await exists(privatePath)); i++)
        await new Promise((r) => setTimeout(r, 50));
      return;
    }
    await rename(tmpKey, privatePath);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The raw key blob of an OpenSSH public key line ("ssh-ed25519 <base64> comment"). */
export function publicKeyBlob(publicKeyLine: string): Buffer {
  const fields = publicKeyLine.trim().split(/\s+/);
  if (fields.length < 2 || !/^(ssh|ecdsa|sk)-/.test(fields[0]) || !/^AAAA[A-Za-z0-9+/]+=*$/.test(fields[1])) {
    throw new Error(`not an OpenSSH public key line: ${JSON.stringify(publicKeyLine.slice(0, 60))}`);
  }
  return Buffer.from(fields[1], 'base64');
}
