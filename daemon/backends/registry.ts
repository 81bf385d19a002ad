// Every backend the daemon can run. Adding one is a folder under daemon/backends/ with its
// descriptor.ts, and one entry in this list; everything else reads it through backend-list.ts.
// Data only: descriptors load their hypervisor code in create().
import type { BackendDescriptor } from './descriptor.js';
import { hyperkitDescriptor } from './hyperkit/descriptor.js';
import { qemuDescriptor } from './qemu/descriptor.js';

export const BACKENDS: readonly BackendDescriptor[] = [qemuDescriptor, hyperkitDescriptor];
