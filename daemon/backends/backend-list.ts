// Questions about the registry's list, asked by config, API, doctor and the CLI. Data only, so
// the CLI can load it without any hypervisor code.
import type { BackendDescriptor } from './descriptor.js';
import { BACKENDS } from './registry.js';

export function backendNames(registry: readonly BackendDescriptor[] = BACKENDS): string[] {
  return registry.map((d) => d.name);
}

export function findBackend(
  name: string,
  registry: readonly BackendDescriptor[] = BACKENDS,
): BackendDescriptor | undefined {
  return registry.find((d) => d.name === name);
}

/** Every executable any backend looks for on PATH, for any guest architecture. */
export function allHostTools(registry: readonly BackendDescriptor[] = BACKENDS): string[] {
  const tools = registry.flatMap((d) => d.guestArchs.flatMap((arch) => d.hostTools(arch)));
  return [...new Set(tools)];
}

/** "a, b or c": the way help texts list choices. */
export function orList(words: readonly string[]): string {
  return words.length <= 1
    ? words.join('')
    : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}`;
}

/** The values the `backend` setting takes, for help texts: "auto, qemu or hyperkit". */
export function backendSettingChoices(registry: readonly BackendDescriptor[] = BACKENDS): string {
  return orList(['auto', ...backendNames(registry)]);
}
