// The contract's answer to a live VM found in the state directory at prepare or start: refuse,
// in the same words for every backend. Adoption goes through Backend.adopt(record) only.

export class LiveVmError extends Error {
  override readonly name = 'LiveVmError';

  constructor(hypervisor: string, pid: number, stateDir: string) {
    super(
      `a live VM (${hypervisor} pid ${pid}) holds the state directory ${stateDir}; adopt it or stop it first`,
    );
  }
}
