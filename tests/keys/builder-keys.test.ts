import t from 'tap';
import { mkdtemp, readFile, stat, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilderKeys, publicKeyBlob } from '../../daemon/keys/builder-keys.js';
import { keyFingerprint } from '../../daemon/probe/guest-ssh.js';
import { execFileSync } from 'node:child_process';

t.test(
  'generates ed25519 client and host keys with private files 0600 and keeps them on a second call',
  async (t) => {
    const dir = join(await mkdtemp(join(tmpdir(), 'lk-keys-')), 'keys');
    const first = await ensureBuilderKeys(dir);
    t.equal(first.generated, true);
    t.equal((await stat(dir)).mode & 0o777, 0o700);
    for (const p of [first.clientKey, first.hostKey]) {
      t.equal((await stat(p)).mode & 0o777, 0o600, `${p} is 0600`);
      t.match(await readFile(p, 'utf8'), /BEGIN OPENSSH PRIVATE KEY/);
    }
    t.match(first.hostPublicKeyLine, /^ssh-ed25519 AAAA\S+ linuxkit-nix host$/);
    t.match(first.clientPublicKeyLine, /^ssh-ed25519 AAAA\S+ linuxkit-nix client$/);

    await chmod(first.clientKey, 0o644);
    const second = await ensureBuilderKeys(dir);
    t.equal(second.generated, false);
    t.equal(second.hostPublicKeyLine, first.hostPublicKeyLine, 'the pinned host key never changes');
    t.equal((await stat(first.clientKey)).mode & 0o777, 0o600, 'a loosened mode is corrected');
  },
);

t.test('fingerprints match what ssh-keygen prints', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-keys-'));
  const keys = await ensureBuilderKeys(dir);
  const printed = execFileSync('ssh-keygen', ['-l', '-f', keys.hostPublicKey], { encoding: 'utf8' }).split(
    ' ',
  )[1];
  t.equal(keyFingerprint(publicKeyBlob(keys.hostPublicKeyLine)), printed);
  t.throws(() => publicKeyBlob('not a key'), /not an OpenSSH public key line/);
});

t.test('concurrent first runs end with one consistent pair', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'lk-keys-')), 'keys');
  const all = await Promise.all(Array.from({ length: 6 }, () => ensureBuilderKeys(dir)));
  for (const k of all) t.equal(k.hostPublicKeyLine, all[0].hostPublicKeyLine);
  // The private key's own public half matches the .pub next to it.
  const derived = execFileSync('ssh-keygen', ['-y', '-f', all[0].hostKey], { encoding: 'utf8' })
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
  t.equal(derived, all[0].hostPublicKeyLine.split(' ').slice(0, 2).join(' '));
  const derivedClient = execFileSync('ssh-keygen', ['-y', '-f', all[0].clientKey], { encoding: 'utf8' })
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
  t.equal(derivedClient, all[0].clientPublicKeyLine.split(' ').slice(0, 2).join(' '));
});
