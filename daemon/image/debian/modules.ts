// The kernel modules /init loads, in dependency order, read from the kernel package itself: each
// module's dependencies from its own .modinfo (Debian's kernel package leaves modules.dep to its
// postinst's depmod), built-in ones skipped by modules.builtin.

export interface KernelModule {
  /** Path below lib/modules/<version>/, e.g. kernel/drivers/net/virtio_net.ko. */
  path: string;
  /** Read on demand: only the modules visited are parsed. */
  depends: () => Promise<string[]>;
}

/** Module names spell "-" and "_" interchangeably (virtio-rng.ko is module virtio_rng). */
export function moduleName(fileOrName: string): string {
  return posixBase(fileOrName)
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replace(/-/g, '_');
}

function posixBase(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

export function builtinModules(modulesBuiltin: string): Set<string> {
  return new Set(modulesBuiltin.split('\n').filter(Boolean).map(moduleName));
}

/**
 * The modules to load for `wanted`, dependencies first, each once; `seen` carries across calls so
 * a second list (the disk modules) leaves out what the first already loads.
 */
export async function moduleLoadOrder(
  wanted: string[],
  modules: Map<string, KernelModule>,
  builtin: Set<string>,
  seen: Set<string>,
  kernelVersion: string,
): Promise<string[]> {
  const order: string[] = [];
  const visit = async (raw: string): Promise<void> => {
    const name = moduleName(raw);
    if (seen.has(name)) return;
    seen.add(name);
    const m = modules.get(name);
    if (!m) {
      if (builtin.has(name)) return;
      throw new Error(
        `kernel module ${raw} is neither in the kernel package nor built into kernel ${kernelVersion}`,
      );
    }
    for (const dep of await m.depends()) await visit(dep);
    order.push(m.path);
  };
  for (const w of wanted) await visit(w);
  return order;
}
