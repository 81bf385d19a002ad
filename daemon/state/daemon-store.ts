// The daemon's durable memory: what the user asked for (desired.json), the VM it runs (vm.json,
// for adoption by the next daemon) and what the reconcile step remembers (step-memory.json).
// All written atomically.
import { readFile, rm } from 'node:fs/promises';
import type { VmRecord } from '../backend.js';
import type { DesiredState } from '../controller.js';
import { writeFileAtomic, writeJsonAtomic } from '../fs/atomic-write.js';
import { parseStepMemoryFile, renderStepMemoryFile, StepMemoryFileError } from './step-memory-file.js';
import type { SupervisorStore } from '../supervisor/types.js';

async function readJson(path: string): Promise<unknown | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    // A missing file is a first start; a torn or corrupt one is treated the same, never fatal.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return null;
    throw err;
  }
}

export function fileStore(paths: { desired: string; vmRecord: string; stepMemory: string }): SupervisorStore {
  return {
    async loadDesired() {
      const v = (await readJson(paths.desired)) as { desired?: unknown } | null;
      return v?.desired === 'running' || v?.desired === 'stopped' ? (v.desired as DesiredState) : null;
    },
    async saveDesired(desired) {
      await writeJsonAtomic(paths.desired, { desired, at: new Date().toISOString() }, { mode: 0o600 });
    },
    async loadRecord() {
      const v = (await readJson(paths.vmRecord)) as VmRecord | null;
      return v && typeof v.pid === 'number' && Array.isArray(v.argv) ? v : null;
    },
    async saveRecord(record) {
      if (record) await writeJsonAtomic(paths.vmRecord, record, { mode: 0o600 });
      else await rm(paths.vmRecord, { force: true });
    },
    async loadMemory() {
      let text: string;
      try {
        text = await readFile(paths.stepMemory, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
      try {
        return parseStepMemoryFile(text);
      } catch (err) {
        if (err instanceof StepMemoryFileError)
          throw new StepMemoryFileError(`${paths.stepMemory}: ${err.message}`);
        throw err;
      }
    },
    async saveMemory(memory) {
      await writeFileAtomic(paths.stepMemory, renderStepMemoryFile(memory), { mode: 0o600 });
    },
  };
}
