// 100 install/repair cycles at once (linuxkitctl install --root, in process) against a Nix
// machines file full of other people's entries: those stay byte for byte, and exactly one
// linuxkit-nix block is left, saying the right thing. Half the cycles first damage our block
// (delete it, or edit it by hand) the way a user or another tool would, then install repairs it.
import t from 'tap';
import { readdirSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../daemon/fs/atomic-write.js';
import { MANAGED_BLOCK_NAME } from '../../daemon/host-files/install-layout.js';
import {
  blockMarkers,
  readManagedBlock,
  removeManagedBlock,
  upsertManagedBlock,
} from '../../daemon/host-files/managed-block.js';
import { tempDir } from '../helpers/env.js';
import { cli } from '../install/install-fixtures.js';
import { prng } from './fuzz-requests.js';

const CYCLES = 100;

/** A machines file as people keep them: comments, blanks, tabs, CRLF, UTF-8, another tool's block, no final newline. */
function foreignMachines(): string {
  const r = prng(42);
  const lines: string[] = ['# Nix remote builders (hand-maintained)', ''];
  for (let i = 0; i < 150; i++) {
    const kind = Math.floor(r() * 6);
    if (kind === 0) lines.push(`# builder ${i}: ✓ owned by team-${Math.floor(r() * 9)}`);
    else if (kind === 1) lines.push('');
    else if (kind === 2)
      lines.push(
        `ssh://nix@b${i}.example.org\tx86_64-linux,aarch64-linux\t/etc/nix/id_${i}\t${1 + Math.floor(r() * 16)}\t1\tbig-parallel,kvm\t-\t-`,
      );
    else if (kind === 3)
      lines.push(
        `ssh-ng://root@10.0.${i % 255}.${(i * 7) % 255}?ssh-key=/root/.ssh/k${i} x86_64-linux - 4 2 - - -\r`,
      );
    else if (kind === 4) lines.push(`   indented-builder-${i}   i686-linux   -   1`);
    else lines.push(`# BEGIN other-tool (not ours)\nssh://other${i} x86_64-linux\n# END other-tool`);
  }
  return lines.join('\n') + '\nssh://last.example x86_64-linux - 1 1 - - -'; // no final newline
}

t.test(
  `${CYCLES} concurrent install/repair cycles keep foreign entries byte for byte and leave one managed block`,
  async (t) => {
    const root = await tempDir('machines');
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const machines = join(root, 'etc', 'nix', 'machines');
    const original = foreignMachines();
    await mkdir(join(root, 'etc', 'nix'), { recursive: true });
    await writeFileAtomic(machines, original, { mode: 0o644 });

    // The first install makes the keys and shows what our block should say.
    const first = await cli('install', ['--root', root, '--system'], { platform: 'linux' });
    t.equal(first.code, 0, first.err);
    const installed = await readFile(machines, 'utf8');
    const expectedBlock = readManagedBlock(installed, MANAGED_BLOCK_NAME);
    t.ok(
      expectedBlock && /^ssh-ng:\/\/linuxkit-builder /.test(expectedBlock),
      `our block: ${expectedBlock?.trim().slice(0, 60)}…`,
    );
    t.equal(
      removeManagedBlock(installed, MANAGED_BLOCK_NAME),
      original,
      'a first install changes nothing outside its block',
    );

    const r = prng(7);
    const damage = async (how: number) => {
      const text = await readFile(machines, 'utf8');
      const next =
        how === 0
          ? removeManagedBlock(text, MANAGED_BLOCK_NAME)
          : readManagedBlock(text, MANAGED_BLOCK_NAME) === null
            ? text
            : upsertManagedBlock(
                text,
                MANAGED_BLOCK_NAME,
                'ssh-ng://linuxkit-builder x86_64-linux - 99 1 - - - # edited by hand\n',
              );
      await writeFileAtomic(machines, next);
    };
    const plan = Array.from({ length: CYCLES }, (_, i) => ({
      i,
      damage: i % 2 === 0 ? Math.floor(r() * 2) : null,
      delayMs: Math.floor(r() * 20),
    }));
    const started = Date.now();
    const results = await Promise.all(
      plan.map(async (p) => {
        await new Promise((res) => setTimeout(res, p.delayMs));
        if (p.damage !== null) await damage(p.damage);
        return cli('install', ['--root', root, '--system'], { platform: 'linux' });
      }),
    );
    const tookMs = Date.now() - started;
    const failed = results.map((x, i) => ({ ...x, i })).filter((x) => x.code !== 0);
    t.same(
      failed.map((x) => `cycle ${x.i}: exit ${x.code}: ${x.err.trim()}`),
      [],
      'every install succeeded',
    );

    const final = await readFile(machines, 'utf8');
    const { begin, end } = blockMarkers(MANAGED_BLOCK_NAME);
    const begins = final.split('\n').filter((l) => l.startsWith(begin)).length;
    const ends = final.split('\n').filter((l) => l === end).length;
    t.equal(begins, 1, 'exactly one managed block begins');
    t.equal(ends, 1, 'and ends');
    t.equal(
      readManagedBlock(final, MANAGED_BLOCK_NAME),
      expectedBlock,
      'saying what install writes (hand edits repaired)',
    );
    const foreign = removeManagedBlock(final, MANAGED_BLOCK_NAME);
    t.equal(foreign.length, original.length, `${original.length} foreign bytes, as many as before`);
    t.ok(foreign === original, 'the foreign entries, byte for byte');
    t.ok(Buffer.from(foreign).equals(Buffer.from(original)), 'byte for byte (as bytes)');
    const leftovers = readdirSync(join(root, 'etc', 'nix')).filter((n) => n.endsWith('.tmp'));
    t.same(leftovers, [], 'no temporary files left next to it');
    const damaged = plan.filter((p) => p.damage !== null).length;
    t.comment(
      `${CYCLES} concurrent install cycles (${damaged} after damaging our block) in ${tookMs} ms: ` +
        `${original.split('\n').length} foreign lines (${original.length} bytes) kept byte for byte; ${begins} managed block left`,
    );
  },
);
