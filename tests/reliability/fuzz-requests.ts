// Hostile HTTP for the daemon's Unix socket, from a seeded PRNG so every run sends the same
// bytes: broken JSON, bodies over the limit, wrong content types, unknown routes and methods,
// path traversal, huge numbers, broken framing, requests cut off mid-way. Every case is built
// so that no well-formed request can come out of it: a fuzz run must never start, stop or
// restart the builder by accident. Raw sockets, because node:http cannot send broken HTTP.
import { connect } from 'node:net';

/** mulberry32: small, fast, good enough for test inputs, and the same sequence for a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export type FuzzClass =
  | 'broken-json'
  | 'body-over-limit'
  | 'wrong-content-type'
  | 'unknown-route'
  | 'wrong-method'
  | 'path-traversal'
  | 'huge-numbers'
  | 'bad-framing'
  | 'cut-off';

export const FUZZ_CLASSES: readonly FuzzClass[] = [
  'broken-json',
  'body-over-limit',
  'wrong-content-type',
  'unknown-route',
  'wrong-method',
  'path-traversal',
  'huge-numbers',
  'bad-framing',
  'cut-off',
];

export interface FuzzCase {
  cls: FuzzClass;
  /** A short description for failure messages. */
  label: string;
  /** Bytes to send, in order; after the last chunk the client half-closes when `endAfter`. */
  chunks: Buffer[];
  /** Half-close after sending (cut-off requests); otherwise wait for the answer. */
  endAfter: boolean;
  /** The answer to a HEAD request has no body. */
  head?: boolean;
}

const ACTION_PATHS = ['/v1/start', '/v1/stop', '/v1/restart'];
const GET_PATHS = ['/v1/status', '/v1/health', '/v1/logs', '/v1/events'];

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const int = (r: Rand, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

function randomBytes(r: Rand, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

function request(
  method: string,
  path: string,
  headers: Record<string, string | number>,
  body: Buffer | string = '',
): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: localhost', 'Connection: close'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), b]);
}

function jsonPost(path: string, body: Buffer | string, contentType = 'application/json'): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return request('POST', path, { 'Content-Type': contentType, 'Content-Length': b.length }, b);
}

// Never `null`, `{}` or an empty body: those are valid action requests.
const BROKEN_JSON = [
  '{',
  '}',
  '[',
  '{"',
  '{"a":',
  '{"a":1',
  '{"a":1,}',
  "{'a':1}",
  '{a:1}',
  'nul',
  'tru',
  'undefined',
  'NaN',
  '{"a":1}}',
  '[1,2',
  '"unterminated',
  '{"a":"\\u12"}',
  ' ',
  '\n',
  '\u0000',
  '{"a":01}',
  '--',
  '{}{}',
];
// Valid JSON the schema refuses (an action body must be `{}`).
const WRONG_SHAPE_JSON = [
  '{"force":true}',
  '[]',
  '[{}]',
  '"stop"',
  '0',
  '1e309',
  'true',
  'false',
  '{"":""}',
  '{"a":{"b":{"c":{}}}}',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
];

function brokenJson(r: Rand): FuzzCase {
  const path = pick(r, ACTION_PATHS);
  const kind = r();
  let body: Buffer;
  let label: string;
  if (kind < 0.4) {
    body = Buffer.from(pick(r, BROKEN_JSON));
    label = 'syntax error';
  } else if (kind < 0.7) {
    body = Buffer.from(pick(r, WRONG_SHAPE_JSON));
    label = 'wrong shape';
  } else if (kind < 0.85) {
    // Random bytes that start with "{" so they are not accidentally valid (or empty).
    body = Buffer.concat([Buffer.from('{'), randomBytes(r, int(r, 1, 512))]);
    label = 'random bytes';
  } else {
    // Deep nesting: a parser that recurses could blow its stack.
    const depth = int(r, 1000, 5000);
    body = Buffer.from('['.repeat(depth) + ']'.repeat(depth));
    label = `nested ${depth} deep`;
  }
  return {
    cls: 'broken-json',
    label: `POST ${path} ${label}`,
    chunks: [jsonPost(path, body)],
    endAfter: false,
  };
}

function bodyOverLimit(r: Rand): FuzzCase {
  const path = pick(r, ACTION_PATHS);
  const size = pick(r, [16 * 1024 + 1, 17 * 1024, 64 * 1024, 1024 * 1024, int(r, 16 * 1024 + 1, 200 * 1024)]);
  const kind = r();
  if (kind < 0.6) {
    const body = Buffer.from(`{"pad":"${'x'.repeat(size)}"}`);
    return {
      cls: 'body-over-limit',
      label: `POST ${path} ${body.length} bytes`,
      chunks: [jsonPost(path, body)],
      endAfter: false,
    };
  }
  if (kind < 0.8) {
    // Chunked, so the size is only known while reading.
    const payload = `{"pad":"${'y'.repeat(size)}"}`;
    const head = request('POST', path, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
    });
    const chunk = Buffer.from(`${payload.length.toString(16)}\r\n${payload}\r\n0\r\n\r\n`);
    return {
      cls: 'body-over-limit',
      label: `POST ${path} chunked ${payload.length} bytes`,
      chunks: [head, chunk],
      endAfter: false,
    };
  }
  // A declared length far over the limit, with only a little sent.
  const head = request('POST', path, { 'Content-Type': 'application/json', 'Content-Length': size * 100 });
  return {
    cls: 'body-over-limit',
    label: `POST ${path} declares ${size * 100} bytes`,
    chunks: [head, Buffer.from('{"a":')],
    endAfter: false,
  };
}

function wrongContentType(r: Rand): FuzzCase {
  const path = pick(r, ACTION_PATHS);
  const type = pick(r, [
    'text/plain',
    'text/html',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/octet-stream',
    'application/javascript',
    'image/png',
    'json',
    '*/*',
    'application/json-patch+json',
    'text/json',
    ';;;',
    'application/' + 'x'.repeat(int(r, 10, 200)),
  ]);
  const body = pick(r, ['{}', 'a=1', '<a/>', 'stop', '--x\r\n\r\n{}\r\n--x--', '\u0000\u0001']);
  return {
    cls: 'wrong-content-type',
    label: `POST ${path} as ${type.slice(0, 40)}`,
    chunks: [jsonPost(path, body, type)],
    endAfter: false,
  };
}

const ROUTE_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789-_.~';
function unknownRoute(r: Rand): FuzzCase {
  const method = pick(r, ['GET', 'POST']);
  const kind = r();
  let path: string;
  if (kind < 0.3) {
    path = pick(r, [
      '/',
      '/v1',
      '/v1/',
      '/v2/status',
      '/v1/status/',
      '/v1/statuss',
      '/V1/STATUS',
      '/v1/start/now',
      '/api',
      '/admin',
      '/v1/config',
      '/v1/shutdown',
      '/v1/exec',
      '//v1/status',
      '/v1//status',
      '/.env',
      '/favicon.ico',
    ]);
  } else {
    const seg = () => Array.from({ length: int(r, 1, 24) }, () => pick(r, [...ROUTE_CHARS])).join('');
    path = '/' + Array.from({ length: int(r, 1, 6) }, seg).join('/');
    if (r() < 0.3) path = `/v1/${seg()}`;
  }
  const chunks = method === 'POST' ? [jsonPost(path, '{"x":1}')] : [request('GET', path, {})];
  return { cls: 'unknown-route', label: `${method} ${path.slice(0, 60)}`, chunks, endAfter: false };
}

function wrongMethod(r: Rand): FuzzCase {
  const kind = r();
  if (kind < 0.55) {
    // A method the route table does not have for this path: 405.
    const path = pick(r, [...ACTION_PATHS, ...GET_PATHS]);
    const method = ACTION_PATHS.includes(path)
      ? pick(r, ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'])
      : pick(r, ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
    // A POST to a GET route carries a non-empty body, so it is not mistaken for anything valid.
    const chunks =
      method === 'GET' || method === 'HEAD' || method === 'OPTIONS'
        ? [request(method, path, {})]
        : [jsonPost(path, '{"x":1}').toString().replace(/^POST/, method)].map((s) => Buffer.from(s));
    return {
      cls: 'wrong-method',
      label: `${method} ${path}`,
      chunks,
      endAfter: false,
      head: method === 'HEAD',
    };
  }
  // Methods HTTP parsers refuse outright, or nonsense.
  const method = pick(r, [
    'FOO',
    'BREW',
    'get',
    'G ET',
    'GETT',
    'CONNECT',
    'TRACE',
    'PROPFIND',
    'M-SEARCH',
    'X'.repeat(int(r, 50, 300)),
    '\u00ff\u00fe',
  ]);
  const path = pick(r, [...ACTION_PATHS, ...GET_PATHS]);
  return {
    cls: 'wrong-method',
    label: `${method.slice(0, 20)} ${path}`,
    chunks: [request(method, path, {})],
    endAfter: false,
  };
}

const TRAVERSALS = [
  '/v1/../../etc/passwd',
  '/../../../../etc/shadow',
  '/v1/logs/../../../../etc/passwd',
  '/v1/logs/..%2f..%2f..%2fetc%2fpasswd',
  '/%2e%2e/%2e%2e/etc/passwd',
  '/v1/%2e%2e/%2e%2e/root/.ssh/id_ed25519',
  '/v1/..%5c..%5cwindows%5cwin.ini',
  '/v1/logs%00.json',
  '/v1/status/..;/..;/etc/passwd',
  '/v1/%252e%252e/%252e%252e/etc/passwd',
  '/v1/logs/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
  '/keys/client_ed25519',
  '/v1/../keys/ssh_host_ed25519_key',
  '/....//....//etc/passwd',
];
const SOURCE_TRAVERSALS = [
  '../../../../etc/passwd',
  '..%2F..%2F..%2Fetc%2Fpasswd',
  '/etc/passwd',
  'console%00',
  'console/../../keys/client_ed25519',
  'daemon/../../../etc/shadow',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  'file:///etc/passwd',
  'console\\..\\..\\keys',
  '..',
  'keys',
  'log/daemon.log',
  'CONSOLE',
  'console%20',
  'daemon%20',
  '',
];
function pathTraversal(r: Rand): FuzzCase {
  if (r() < 0.5) {
    const path = pick(r, TRAVERSALS);
    return {
      cls: 'path-traversal',
      label: `GET ${path}`,
      chunks: [request('GET', path, {})],
      endAfter: false,
    };
  }
  // Every source= value here is refused; a valid `lines` could not make the request valid.
  const source = pick(r, SOURCE_TRAVERSALS);
  const path = `/v1/logs?source=${source}${r() < 0.5 ? `&lines=${int(r, 1, 100)}` : ''}`;
  return {
    cls: 'path-traversal',
    label: `GET ${path.slice(0, 80)}`,
    chunks: [request('GET', path, {})],
    endAfter: false,
  };
}

function hugeNumbers(r: Rand): FuzzCase {
  const kind = r();
  if (kind < 0.65) {
    const lines = pick(r, [
      '1e309',
      '99999999999999999999999999999',
      '10001',
      '-1',
      '0',
      'NaN',
      'Infinity',
      '-Infinity',
      '1.5',
      '-0x10',
      '1e4.5',
      '9'.repeat(int(r, 20, 5000)),
      '-' + '9'.repeat(40),
      '2147483648',
      '9007199254740993',
      '１０',
      '1_000',
      ' ',
    ]);
    const path = `/v1/logs?source=${pick(r, ['console', 'daemon'])}&lines=${encodeURIComponent(lines)}`;
    const shown = lines.length > 24 ? `${lines.slice(0, 12)}…(${lines.length} characters)` : lines;
    return {
      cls: 'huge-numbers',
      label: `GET /v1/logs lines=${shown}`,
      chunks: [request('GET', path, {})],
      endAfter: false,
    };
  }
  if (kind < 0.85) {
    // A Content-Length no server can honour.
    const cl = pick(r, [
      '99999999999999999999999',
      '18446744073709551616',
      '-5',
      '1e9',
      '0x20',
      '+5',
      '5, 6',
    ]);
    const path = pick(r, ACTION_PATHS);
    const head = Buffer.from(
      `POST ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${cl}\r\n\r\n{"x":1}`,
    );
    return {
      cls: 'huge-numbers',
      label: `POST ${path} Content-Length: ${cl}`,
      chunks: [head],
      endAfter: false,
    };
  }
  // A query string far past the header limit.
  const path = `/v1/logs?source=console&lines=${'9'.repeat(int(r, 20_000, 80_000))}`;
  return {
    cls: 'huge-numbers',
    label: `GET /v1/logs with a ${path.length}-byte URL`,
    chunks: [request('GET', path, {})],
    endAfter: false,
  };
}

function badFraming(r: Rand): FuzzCase {
  // GET on an action path: a parser lenient enough to accept the framing still finds no route.
  const path = pick(r, ACTION_PATHS);
  const variants: Array<[string, Buffer]> = [
    ['random bytes', randomBytes(r, int(r, 1, 2048))],
    ['no HTTP version', Buffer.from(`GET ${path}\r\n\r\n`)],
    ['HTTP/9.9', Buffer.from(`GET ${path} HTTP/9.9\r\nHost: x\r\n\r\n`)],
    ['bare LF and NUL', Buffer.from(`GET ${path} HTTP/1.1\nHost: x\u0000\n\n`)],
    ['header without colon', Buffer.from(`GET ${path} HTTP/1.1\r\nHost x\r\n\r\n`)],
    ['space in header name', Buffer.from(`GET ${path} HTTP/1.1\r\nHo st: x\r\n\r\n`)],
    [
      'two Content-Length',
      Buffer.from(
        `POST /v1/stop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\n{"a":1}`,
      ),
    ],
    [
      'Content-Length and chunked',
      Buffer.from(
        `POST /v1/stop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n`,
      ),
    ],
    [
      'bad chunk size',
      Buffer.from(
        `POST /v1/stop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{"a":1}\r\n0\r\n\r\n`,
      ),
    ],
    [
      'header over 16 KiB',
      Buffer.from(`GET ${path} HTTP/1.1\r\nHost: x\r\nX-Big: ${'z'.repeat(int(r, 17_000, 70_000))}\r\n\r\n`),
    ],
    [
      'ten thousand headers',
      Buffer.from(
        `GET ${path} HTTP/1.1\r\n${Array.from({ length: 10_000 }, (_, i) => `X-${i}: ${i}`).join('\r\n')}\r\n\r\n`,
      ),
    ],
    ['control character in URL', Buffer.from(`GET /v1/\u0001status HTTP/1.1\r\nHost: x\r\n\r\n`)],
    [
      'absolute-form to another host',
      Buffer.from(`GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n`),
    ],
    [
      'obsolete line folding',
      Buffer.from(
        `POST /v1/stop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n  folded\r\nContent-Length: 7\r\n\r\n{"a":1}`,
      ),
    ],
  ];
  const [label, bytes] = pick(r, variants);
  return { cls: 'bad-framing', label, chunks: [bytes], endAfter: false };
}

function cutOff(r: Rand): FuzzCase {
  const path = pick(r, ACTION_PATHS);
  // Declares a non-empty JSON body it never finishes: the handler must never run.
  const full = jsonPost(path, '{"x":"' + 'p'.repeat(int(r, 1, 400)) + '"}');
  const headerEnd = full.indexOf('\r\n\r\n');
  const where = r();
  const cut =
    where < 0.33
      ? int(r, 1, headerEnd)
      : where < 0.66
        ? headerEnd + int(r, 0, 3)
        : int(r, headerEnd + 4, full.length - 1);
  const chunks = [full.subarray(0, cut)];
  return {
    cls: 'cut-off',
    label: `POST ${path} cut at byte ${cut} of ${full.length}`,
    chunks,
    endAfter: true,
  };
}

const GENERATORS: Record<FuzzClass, (r: Rand) => FuzzCase> = {
  'broken-json': brokenJson,
  'body-over-limit': bodyOverLimit,
  'wrong-content-type': wrongContentType,
  'unknown-route': unknownRoute,
  'wrong-method': wrongMethod,
  'path-traversal': pathTraversal,
  'huge-numbers': hugeNumbers,
  'bad-framing': badFraming,
  'cut-off': cutOff,
};

/** `perClass` cases of every class, interleaved, the same for the same seed. */
export function fuzzCases(seed: number, perClass: number): FuzzCase[] {
  const r = prng(seed);
  const out: FuzzCase[] = [];
  for (let i = 0; i < perClass; i++) for (const cls of FUZZ_CLASSES) out.push(GENERATORS[cls](r));
  return out;
}

export type Outcome =
  | { kind: 'answer'; status: number; headers: Record<string, string>; body: string; raw: string }
  | { kind: 'closed'; bytes: number }
  | { kind: 'timeout' }
  | { kind: 'refused'; code: string };

/** Sends one case on a new connection; resolves with the answer, a close, or a timeout. */
export function sendCase(socketPath: string, c: FuzzCase, timeoutMs = 10_000): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = connect({ path: socketPath });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (o: Outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    const tryParse = (closed: boolean) => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (closed) finish({ kind: 'closed', bytes: buf.length });
        return;
      }
      const head = buf.subarray(0, end).toString('latin1');
      const [statusLine, ...headerLines] = head.split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
      if (!m) return finish({ kind: 'answer', status: 0, headers: {}, body: '', raw: head.slice(0, 200) });
      const headers: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const status = Number(m[1]);
      const bodyBytes = buf.subarray(end + 4);
      const answer = (body: string) =>
        finish({ kind: 'answer', status, headers, body, raw: head.slice(0, 200) });
      if (c.head) return answer('');
      const cl = headers['content-length'];
      if (cl !== undefined && bodyBytes.length >= Number(cl))
        return answer(bodyBytes.subarray(0, Number(cl)).toString('utf8'));
      if (closed) return answer(bodyBytes.toString('utf8'));
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      tryParse(false);
    });
    sock.on('end', () => tryParse(true));
    sock.on('close', () => tryParse(true));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // The server may reset a connection it refuses mid-send (a body over the limit): a close.
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT' || err.code === 'EACCES')
        finish({ kind: 'refused', code: err.code });
      else tryParse(true);
    });
    sock.on('connect', () => {
      for (const ch of c.chunks) if (!sock.destroyed) sock.write(ch, () => undefined);
      if (c.endAfter) sock.end();
    });
  });
}

/** What the daemon must answer to hostile input: a JSON error with a 4xx status, or a close. */
export function judge(c: FuzzCase, o: Outcome): { ok: boolean; bucket: string; why?: string } {
  if (o.kind === 'closed') return { ok: true, bucket: 'closed' };
  if (o.kind === 'timeout')
    return { ok: false, bucket: 'timeout', why: 'no answer and no close within the timeout' };
  if (o.kind === 'refused')
    return { ok: false, bucket: `refused ${o.code}`, why: `connection refused: ${o.code}` };
  const bucket = String(o.status);
  if (o.status < 400 || o.status > 499)
    return { ok: false, bucket, why: `status ${o.status} (${o.raw.split('\r\n')[0]})` };
  if (!/^application\/json\b/.test(o.headers['content-type'] ?? '')) {
    return { ok: false, bucket, why: `content-type ${o.headers['content-type'] ?? 'none'} is not JSON` };
  }
  if (c.head) return { ok: true, bucket };
  try {
    const body = JSON.parse(o.body) as { error?: unknown; message?: unknown };
    if (typeof body.error !== 'string' || typeof body.message !== 'string') {
      return { ok: false, bucket, why: `JSON without error/message: ${o.body.slice(0, 200)}` };
    }
  } catch {
    return { ok: false, bucket, why: `body is not JSON: ${JSON.stringify(o.body.slice(0, 200))}` };
  }
  return { ok: true, bucket };
}

/** Runs `cases` with at most `concurrency` connections open at once. */
export async function runPool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
