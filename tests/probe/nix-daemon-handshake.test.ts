// The worker protocol's handshake the Nix probe exchanges with the guest's nix-daemon: the bytes
// sent, and every way a reply can be wrong, each with an error that says what.
import t from 'tap';
import {
  handshakeRequest,
  parseHandshakeReply,
  replyComplete,
} from '../../daemon/probe/nix-daemon-handshake.js';

const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const str = (s: string) => {
  const bytes = Buffer.from(s);
  return Buffer.concat([u64(bytes.length), bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
};
const MAGIC_2 = 0x6478696f;
const LAST = 0x616c7473;

t.test('the request: magic, version 1.34, no CPU affinity, no reserved space', async (t) => {
  t.same(handshakeRequest(), Buffer.concat([u64(0x6e697863), u64(0x122), u64(0), u64(0)]));
});

t.test('a daemon of 1.33 or later says its Nix version; an older one only its protocol', async (t) => {
  t.same(parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x122), str('2.8.0'), u64(LAST)])), {
    protocol: '1.34',
    nixVersion: '2.8.0',
  });
  t.same(parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x125), str('2.24.10'), u64(LAST)])), {
    protocol: '1.37',
    nixVersion: '2.24.10',
  });
  t.same(parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x120), u64(LAST)])), {
    protocol: '1.32',
    nixVersion: null,
  });
});

t.test('what is wrong with a reply is named', async (t) => {
  t.throws(() => parseHandshakeReply(Buffer.alloc(0)), {
    message: "the nix-daemon's handshake ended before its magic number (0 bytes)",
  });
  t.throws(() => parseHandshakeReply(Buffer.from('sh: nix-daemon: not found\n')), {
    message:
      /^the nix-daemon answered with 0x[0-9a-f]+, not the worker protocol's magic number: "sh: nix-daemon: not found"$/,
  });
  t.throws(() => parseHandshakeReply(u64(MAGIC_2)), {
    message: "the nix-daemon's handshake ended before its protocol version (8 bytes)",
  });
  t.throws(() => parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x222)])), {
    message: 'the nix-daemon speaks protocol 2.34; 1.x is expected',
  });
  t.throws(() => parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x122), u64(5), Buffer.from('2.8')])), {
    message: "the nix-daemon's handshake ended inside its Nix version (5 bytes announced)",
  });
  t.throws(() => parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x122), str('2.8.0')])), {
    message: "the nix-daemon's handshake ended before the end of its log messages (32 bytes)",
  });
  t.throws(
    () => parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x122), str('2.8.0'), u64(0x63787470)])),
    {
      message: 'the nix-daemon refused the connection (an error in its handshake)',
    },
  );
  t.throws(
    () => parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x122), str('2.8.0'), u64(0x6f6c6d67)])),
    {
      message: 'the nix-daemon sent log message 0x6f6c6d67 in its handshake; only the end mark was expected',
    },
  );
});

t.test('a reply is complete when whole, or wrong in a way more bytes will not mend', async (t) => {
  const whole = Buffer.concat([u64(MAGIC_2), u64(0x122), str('2.8.0'), u64(LAST)]);
  for (let n = 0; n < whole.length; n++) t.equal(replyComplete(whole.subarray(0, n)), false, `${n} bytes`);
  t.equal(replyComplete(whole), true);
  t.equal(replyComplete(Buffer.from('sh: nix-daemon: not found\n')), true, 'not the protocol at all');
  t.equal(replyComplete(Buffer.concat([u64(MAGIC_2), u64(0x122), u64(1 << 20)])), true, 'a 1 MiB version');
  t.throws(() => parseHandshakeReply(Buffer.concat([u64(MAGIC_2), u64(0x122), u64(1 << 20)])), {
    message: "the nix-daemon's handshake announced its Nix version of 1048576 bytes",
  });
});
