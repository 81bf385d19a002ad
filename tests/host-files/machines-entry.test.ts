import t from 'tap';
import { renderMachinesLine } from '../../daemon/host-files/machines-entry.js';

const hostKey =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOb0eNRs0bBl4dR5T4w6yqHj0Jm9mN2Fh0lO0Hq0VhQk linuxkit-nix host';

t.test('renders all 8 fields with the base64 of the host key line in field 8', async (t) => {
  const line = renderMachinesLine({
    uri: 'ssh-ng://linuxkit-builder',
    systems: ['x86_64-linux'],
    identityFile: '/var/lib/linuxkit-nix/keys/client_ed25519',
    maxJobs: 2,
    speedFactor: 1,
    supportedFeatures: ['benchmark', 'big-parallel'],
    mandatoryFeatures: [],
    hostPublicKeyLine: hostKey,
  });
  const fields = line.split(' ');
  t.equal(fields.length, 8);
  t.same(fields.slice(0, 7), [
    'ssh-ng://linuxkit-builder',
    'x86_64-linux',
    '/var/lib/linuxkit-nix/keys/client_ed25519',
    '2',
    '1',
    'benchmark,big-parallel',
    '-',
  ]);
  t.equal(Buffer.from(fields[7], 'base64').toString(), hostKey + '\n');
});

t.test('empty feature lists become "-"', async (t) => {
  const line = renderMachinesLine({
    uri: 'ssh://b',
    systems: ['aarch64-linux'],
    identityFile: '/k',
    maxJobs: 1,
    speedFactor: 1,
    supportedFeatures: [],
    mandatoryFeatures: [],
    hostPublicKeyLine: hostKey,
  });
  t.match(line, /^ssh:\/\/b aarch64-linux \/k 1 1 - - /);
});

t.test('rejects values that would break the line, naming the field', async (t) => {
  const base = {
    uri: 'ssh://b',
    systems: ['x86_64-linux'],
    identityFile: '/k',
    maxJobs: 1,
    speedFactor: 1,
    supportedFeatures: [],
    mandatoryFeatures: [],
    hostPublicKeyLine: hostKey,
  };
  t.throws(() => renderMachinesLine({ ...base, identityFile: '/a b/key' }), /identityFile/);
  t.throws(() => renderMachinesLine({ ...base, uri: 'http://b' }), /uri must start with ssh/);
  t.throws(() => renderMachinesLine({ ...base, maxJobs: 0 }), /maxJobs/);
  t.throws(() => renderMachinesLine({ ...base, systems: [] }), /systems/);
  t.throws(() => renderMachinesLine({ ...base, supportedFeatures: ['kvm #'] }), /supportedFeatures/);
});
