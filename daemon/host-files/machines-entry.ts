// Nix's machines file (/etc/nix/machines): one builder per line, 8 space-separated fields,
// `-` for an empty one. Our line lives in a managed block so it can be updated in place and
// removed exactly, while every line outside the block stays byte for byte.

export interface MachinesEntry {
  /** e.g. "ssh-ng://linuxkit-builder"; no port: Nix 2.8 cannot parse one, the SSH alias carries it. */
  uri: string;
  systems: string[];
  identityFile: string;
  maxJobs: number;
  speedFactor: number;
  supportedFeatures: string[];
  mandatoryFeatures: string[];
  /** The builder's host public key line ("ssh-ed25519 AAAA... comment"); field 8 is its base64. */
  hostPublicKeyLine: string;
}

const FIELD_RE = /^[^\s#]+$/;

function field(name: string, value: string): string {
  if (!FIELD_RE.test(value)) {
    throw new Error(
      `machines entry ${name} must be non-empty without spaces or '#'; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function list(name: string, values: string[]): string {
  return values.length ? field(name, values.join(',')) : '-';
}

export function renderMachinesLine(e: MachinesEntry): string {
  if (!/^ssh(-ng)?:\/\//.test(e.uri))
    throw new Error(`machines entry uri must start with ssh:// or ssh-ng://; got ${e.uri}`);
  if (!Number.isInteger(e.maxJobs) || e.maxJobs < 1)
    throw new Error(`machines entry maxJobs must be an integer >= 1; got ${e.maxJobs}`);
  if (!(e.speedFactor > 0)) throw new Error(`machines entry speedFactor must be > 0; got ${e.speedFactor}`);
  if (e.systems.length === 0)
    throw new Error('machines entry systems must name at least one system, e.g. x86_64-linux');
  return [
    field('uri', e.uri),
    list('systems', e.systems),
    field('identityFile', e.identityFile),
    String(e.maxJobs),
    String(e.speedFactor),
    list('supportedFeatures', e.supportedFeatures),
    list('mandatoryFeatures', e.mandatoryFeatures),
    Buffer.from(e.hostPublicKeyLine.trim() + '\n').toString('base64'),
  ].join(' ');
}
