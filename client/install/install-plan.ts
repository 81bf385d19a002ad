// From "what the files should say" and "what they say now" to the writes install makes and the
// manifest that lets uninstall undo exactly them. Pure: the tests and --dry-run use it as is.
import { removeManagedBlock, upsertManagedBlock } from '../../daemon/host-files/managed-block.js';
import {
  mergeManifest,
  ownsFile,
  renderManifest,
  sha256,
  type InstallManifest,
  type ManifestBlock,
  type ManifestModified,
} from '../../daemon/host-files/install-manifest.js';
import type { InstallLayout } from '../../daemon/host-files/install-layout.js';

/** 'service': owned by the service user (chowned when root installs for a user). 'root': left as created. */
export type Owner = 'service' | 'root';

export type DesiredFile =
  | { kind: 'whole'; path: string; content: string; mode: number; owner: Owner; label: string }
  | { kind: 'block'; path: string; name: string; body: string; mode: number; owner: Owner; label: string };

export interface PlannedDir {
  path: string;
  mode: number;
  owner: Owner;
}

export interface PlannedWrite {
  path: string;
  label: string;
  before: string | null;
  after: string;
  /** Our block in a shared file (else the file is ours whole): how `after` is made from any content. */
  block: { name: string; body: string } | null;
  /** Mode of a new file; an existing file keeps its own. */
  mode: number;
  owner: Owner;
}

export interface InstallPlan {
  dirs: PlannedDir[];
  /** Key files ssh-keygen will make (private and public halves). */
  newKeyFiles: string[];
  writes: PlannedWrite[];
  /** Files that already say the right thing. */
  unchanged: string[];
  manifest: InstallManifest;
}

export interface PlanInput {
  layout: InstallLayout;
  prior: InstallManifest | null;
  /** Current text of every desired file and of the manifest; null when missing. */
  current: ReadonlyMap<string, string | null>;
  missingDirs: PlannedDir[];
  missingKeyFiles: string[];
  desired: DesiredFile[];
}

function textOf(current: ReadonlyMap<string, string | null>, path: string): string | null {
  if (!current.has(path)) throw new Error(`internal: no snapshot of ${path}`);
  return current.get(path) ?? null;
}

export function planInstall(input: PlanInput): InstallPlan {
  const { layout, prior, current } = input;
  const writes: PlannedWrite[] = [];
  const unchanged: string[] = [];
  const createdFiles: string[] = [...input.missingKeyFiles];
  const blocks: ManifestBlock[] = [];
  const modified: ManifestModified[] = [];

  for (const d of input.desired) {
    const before = textOf(current, d.path);
    const after = d.kind === 'whole' ? d.content : upsertManagedBlock(before ?? '', d.name, d.body);
    if (d.kind === 'block') blocks.push({ file: d.path, name: d.name, fileCreated: before === null });
    if (before === after) {
      unchanged.push(d.path);
      continue;
    }
    const block = d.kind === 'block' ? { name: d.name, body: d.body } : null;
    writes.push({ path: d.path, label: d.label, before, after, block, mode: d.mode, owner: d.owner });
    if (d.kind === 'whole') {
      const owned = ownsFile(prior, d.path);
      if (before === null || owned === 'created') createdFiles.push(d.path);
      else modified.push({ file: d.path, original: before, writtenSha256: sha256(after) });
    }
  }

  const manifest = mergeManifest(
    prior,
    {
      version: 1,
      scope: layout.scope,
      platform: layout.platform,
      root: layout.root,
      alias: layout.alias,
      user: layout.user,
      service: layout.service,
      paths: {
        stateDir: layout.stateDir,
        configPath: layout.configPath,
        socketPath: layout.socketPath,
        keysDir: layout.keys.dir,
        knownHostsFile: layout.knownHostsFile,
        machinesFile: layout.machinesFile,
        sshDropIn: layout.sshDropIn,
      },
    },
    { createdDirs: input.missingDirs.map((d) => d.path), createdFiles, blocks, modified },
  );
  const manifestBefore = textOf(current, layout.manifestPath);
  const manifestAfter = renderManifest(manifest);
  if (manifestBefore !== manifestAfter) {
    writes.push({
      path: layout.manifestPath,
      label: 'install manifest',
      before: manifestBefore,
      after: manifestAfter,
      block: null,
      mode: 0o644,
      owner: 'service',
    });
  } else unchanged.push(layout.manifestPath);

  return { dirs: input.missingDirs, newKeyFiles: input.missingKeyFiles, writes, unchanged, manifest };
}

export interface RemovalStep {
  path: string;
  label: string;
  before: string;
  /** null: delete the file. */
  after: string | null;
}

export interface UninstallPlan {
  steps: RemovalStep[];
  /** Created folders to remove if empty, deepest first. */
  dirs: string[];
  /** Things left in place, and why. */
  kept: string[];
}

/**
 * Undoes a manifest against the files as they are now: blocks come out (and files install
 * created go when nothing else is left in them), created files go, changed files get their
 * earlier content back if nobody touched them since.
 */
export function planUninstall(
  manifest: InstallManifest,
  current: ReadonlyMap<string, string | null>,
  manifestPath: string,
): UninstallPlan {
  const steps: RemovalStep[] = [];
  const kept: string[] = [];
  const blockFiles = new Set(manifest.blocks.map((b) => b.file));
  const byFile = new Map<string, string>();
  const read = (p: string) => (byFile.has(p) ? byFile.get(p)! : textOf(current, p));

  for (const b of manifest.blocks) {
    const before = read(b.file);
    if (before === null) continue;
    const after = removeManagedBlock(before, b.name);
    byFile.set(b.file, after);
  }
  for (const file of blockFiles) {
    const before = textOf(current, file);
    const after = byFile.get(file);
    if (before === null || after === undefined) continue;
    const createdByUs = manifest.blocks.some((b) => b.file === file && b.fileCreated);
    if (createdByUs && after === '')
      steps.push({ path: file, label: 'file install created', before, after: null });
    else if (after !== before) steps.push({ path: file, label: 'managed block', before, after });
    if (createdByUs && after !== '')
      kept.push(`${file}: install created it, but it now has lines of its own; only the block was removed`);
  }
  for (const file of manifest.createdFiles) {
    if (blockFiles.has(file) || file === manifestPath) continue;
    const before = textOf(current, file);
    if (before !== null) steps.push({ path: file, label: 'file install created', before, after: null });
  }
  for (const m of manifest.modified) {
    const before = textOf(current, m.file);
    if (before === null) continue;
    if (sha256(before) === m.writtenSha256)
      steps.push({
        path: m.file,
        label: 'restored to its content before install',
        before,
        after: m.original,
      });
    else
      kept.push(
        `${m.file}: changed after install, so it stays as it is (its content from before install is not restored)`,
      );
  }
  const manifestText = textOf(current, manifestPath);
  if (manifestText !== null)
    steps.push({ path: manifestPath, label: 'install manifest', before: manifestText, after: null });
  return { steps, dirs: [...manifest.createdDirs].reverse(), kept };
}
