// codemode's Cloudflare Worker: runs the programs of codemode.CloudflareDriver. The Python host
// keeps the tools, their secrets and their data; this Worker only runs code, each execution in
// a dynamic Worker of its own (the Worker Loader binding LOADER) with no network and no
// bindings, and answers nothing but authenticated requests.
//
// One execution = one WebSocket to /execute. Opening it needs three headers: x-codemode-time
// (Unix seconds, within WINDOW_S of this Worker's clock), x-codemode-nonce (used once) and
// x-codemode-signature = hex HMAC-SHA256(SECRET, "open\n" + time + "\n" + nonce). Every
// message after that, both ways, is one text frame "<seq> <hex signature> <lines>" (one line,
// or several joined with "\n") with the signature over nonce + "\n" + direction ("h" from the
// host, "w" from the Worker) + "\n" + seq + "\n" + lines, and seq counting 1, 2, 3... in
// each direction: a message of another execution, replayed, reordered or changed is refused,
// and the socket closed.
//
// The lines are those of the V8 engine (python/codemode/v8/host.mjs): the host sends
// "R <spec>" then "S <callId> <status> <payload>" (and "K <checkId> <answer>" for a host
// library's checks); the Worker sends c, k, l, r, o and f lines.
// The sandbox (sandbox.js, in the program's isolate) makes them; this Worker checks each one
// and enforces the limits again (tool calls, console output, result size, time), so that a
// program that subverts its sandbox still cannot flood the host.
//
// The sandbox module, the message table and program_errors.mjs are put in place by
// codemode.cloudflare.bundle.

import { RpcTarget } from "cloudflare:workers";

const SANDBOX = __SANDBOX__;
const MESSAGES = __MESSAGES__;
const say = (key, values = {}) =>
  MESSAGES[key].replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));

__PROGRAM_ERRORS__

// The kinds of error the sandbox may end a run with by itself.
const SANDBOX_KINDS = new Set(["syntax", "runtime", "memory", "output_limit", "result", "internal"]);

function isJsonString(text) {
  try {
    return typeof JSON.parse(text) === "string";
  } catch {
    return false;
  }
}

const WINDOW_S = 60; // how far the host's clock may be from this Worker's
const LINE_MAX = 64 << 20; // the longest line either side may send
const REPORT_BYTES_MAX = 16 << 20;
const COMPATIBILITY_DATE = "2025-09-01";
const MODULE_PREFIX = "module.exports = (function (require, module, exports, __filename, __dirname) { return [";
const PROGRAM_PREFIX = MODULE_PREFIX + "(async function (__codemode_channel) {";
const MODULE_SUFFIX = "\n][0]; })();";
const PROGRAM_SUFFIX = "\n})" + MODULE_SUFFIX;
const encoder = new TextEncoder();
const seen = new Map(); // nonce -> when it may be forgotten (ms)
let cachedKey = null; // {secret, key} of the last secret seen

// HMAC-SHA256. Short messages (tool calls and results, console lines: nearly all) are signed
// here in JavaScript, at once: crypto.subtle answers in a later turn of the event loop, which
// costs more than the hash (about 0.1 ms a message). Long ones go to crypto.subtle.
const SYNC_MAX = 16 << 10;
const SHA_K = new Uint32Array(64);
const SHA_H = new Uint32Array(8);
{
  const primes = [];
  for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
  const frac = (x) => ((x - Math.floor(x)) * 2 ** 32) >>> 0;
  primes.forEach((p, i) => {
    SHA_K[i] = frac(Math.cbrt(p));
    if (i < 8) SHA_H[i] = frac(Math.sqrt(p));
  });
}

function sha256(chunks) {
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const padded = new Uint8Array(((length + 9 + 63) >> 6) << 6);
  let at = 0;
  for (const c of chunks) {
    padded.set(c, at);
    at += c.length;
  }
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(length / 2 ** 29));
  view.setUint32(padded.length - 4, (length << 3) >>> 0);
  const h = Uint32Array.from(SHA_H);
  const w = new Uint32Array(64);
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + 4 * i);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) outView.setUint32(4 * i, h[i]);
  return out;
}

async function keyFor(secret) {
  let raw = encoder.encode(secret);
  if (raw.length > 64) raw = sha256([raw]);
  const inner = new Uint8Array(64).fill(0x36);
  const outer = new Uint8Array(64).fill(0x5c);
  for (let i = 0; i < raw.length; i++) {
    inner[i] ^= raw[i];
    outer[i] ^= raw[i];
  }
  const subtle = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
  return { inner, outer, subtle };
}

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

function unhex(text) {
  if (!/^[0-9a-f]{64}$/.test(text)) return null;
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function hmacNow(key, bytes) {
  return sha256([key.outer, sha256([key.inner, bytes])]);
}

// A value at once for a short text, a promise for a long one.
function sign(key, text) {
  const bytes = encoder.encode(text);
  if (bytes.length <= SYNC_MAX) return hex(hmacNow(key, bytes));
  return crypto.subtle.sign("HMAC", key.subtle, bytes).then(hex);
}

function verify(key, signature, text) {
  const expected = unhex(signature ?? "");
  if (expected === null) return false;
  const bytes = encoder.encode(text);
  if (bytes.length > SYNC_MAX) return crypto.subtle.verify("HMAC", key.subtle, expected, bytes);
  const actual = hmacNow(key, bytes);
  let diff = 0;
  for (let i = 0; i < 32; i++) diff |= actual[i] ^ expected[i];
  return diff === 0;
}

// Is this WebSocket request the host's own, and fresh?
async function admitted(request, key) {
  const time = request.headers.get("x-codemode-time") ?? "";
  const nonce = request.headers.get("x-codemode-nonce") ?? "";
  const signature = request.headers.get("x-codemode-signature") ?? "";
  if (!/^\d{1,12}$/.test(time) || !/^[0-9a-f]{32}$/.test(nonce)) return null;
  const now = Date.now();
  if (Math.abs(now / 1000 - Number(time)) > WINDOW_S) return null;
  if (!(await verify(key, signature, `open\n${time}\n${nonce}`))) return null;
  for (const [old, until] of seen) {
    if (until > now) break;
    seen.delete(old);
  }
  if (seen.has(nonce)) return null;
  seen.set(nonce, now + 2 * WINDOW_S * 1000);
  return nonce;
}

// The sandbox's way to this Worker: lines out, tool results in.
class Host extends RpcTarget {
  constructor(run) {
    super();
    this.run = run;
  }
  send(lines) {
    if (Array.isArray(lines)) for (const line of lines) this.run.fromSandbox(String(line));
  }
  next() {
    return this.run.nextResults();
  }
}

class Run {
  constructor(socket, key, nonce, env) {
    this.socket = socket;
    this.key = key;
    this.nonce = nonce;
    this.env = env;
    this.seqIn = 0;
    this.seqOut = 0;
    this.sending = Promise.resolve();
    this.spec = null;
    this.finished = false;
    this.calls = 0;
    this.checks = 0;
    this.logLines = 0;
    this.logBytes = 0;
    this.logCut = false;
    this.reportBytes = 0;
    this.results = [];
    this.batch = [];
    this.batching = false;
    this.waiter = null;
    this.timer = null;
    // Frames are checked one after the other, in the order they came.
    this.receiving = Promise.resolve();
  }

  // -- the host's side -----------------------------------------------------------------

  received(data) {
    this.receiving = this.receiving.then(() => this.check(data));
  }

  async check(data) {
    if (this.finished) return;
    if (typeof data !== "string" || data.length > LINE_MAX) return this.refuse();
    const a = data.indexOf(" ");
    const b = data.indexOf(" ", a + 1);
    if (a < 0 || b < 0) return this.refuse();
    const seq = Number(data.slice(0, a));
    const line = data.slice(b + 1);
    if (seq !== this.seqIn + 1) return this.refuse();
    if (!(await verify(this.key, data.slice(a + 1, b), `${this.nonce}\nh\n${seq}\n${line}`))) return this.refuse();
    this.seqIn = seq;
    if (line.charCodeAt(0) === 82 /* R */) {
      if (this.spec === null) return this.start(line.slice(2));
      return this.refuse();
    }
    // Tool results: one line each, several to a frame.
    if (this.spec === null) return this.refuse();
    for (const result of line.split("\n")) {
      const kind = result.charCodeAt(0);
      if (kind !== 83 /* S */ && kind !== 75 /* K */) return this.refuse();
      this.results.push(result);
    }
    if (this.waiter !== null) {
      const wake = this.waiter;
      this.waiter = null;
      wake();
    }
  }

  // A message that is not the host's, or out of order: no more of this execution.
  refuse() {
    this.finished = true;
    this.stopSandbox();
    try {
      this.socket.close(1008, "refused");
    } catch {}
  }

  closed() {
    this.finished = true;
    this.stopSandbox();
  }

  stopSandbox() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.waiter !== null) {
      const wake = this.waiter;
      this.waiter = null;
      wake();
    }
  }

  async nextResults() {
    while (this.results.length === 0 && !this.finished) {
      await new Promise((resolve) => (this.waiter = resolve));
    }
    if (this.finished) return null;
    const lines = this.results;
    this.results = [];
    return lines;
  }

  start(text) {
    let spec;
    try {
      spec = JSON.parse(text);
      if (typeof spec.code !== "string" || !Array.isArray(spec.names)) throw new Error();
    } catch {
      return this.refuse();
    }
    this.spec = spec;
    this.position = positionIn(spec.code, PROGRAM_PREFIX);
    const timeoutMs = Math.max(1, Number(spec.timeoutMs) || 30000);
    this.timer = setTimeout(() => this.finish("timeout", "TimeoutError", say("timeout", { ms: timeoutMs }), []), timeoutMs);
    // CommonJS modules, as the program is a script on every engine (sloppy mode, HTML-like
    // comments); the outer function hides the module's own bindings from the program.
    const modules = {
      "sandbox.js": SANDBOX,
      "program.ts": { cjs: PROGRAM_PREFIX + spec.code + PROGRAM_SUFFIX },
    };
    if (typeof spec.library === "string") {
      modules["library.js"] = { cjs: MODULE_PREFIX + spec.library + MODULE_SUFFIX };
    }
    const sandbox = {
      code: spec.code,
      prefix: PROGRAM_PREFIX,
      names: spec.names.map(String),
      maxCalls: spec.maxCalls,
      maxLogLines: spec.maxLogLines,
      maxLogBytes: spec.maxLogBytes,
      failLog: spec.failLog === true,
      maxResult: spec.maxResult,
      memoryMib: spec.memoryMib,
      channel: spec.channel === true,
      library: typeof spec.library === "string" ? spec.library : null,
    };
    let worker;
    try {
      worker = this.env.LOADER.load({
        compatibilityDate: COMPATIBILITY_DATE,
        mainModule: "sandbox.js",
        modules,
        env: {},
        globalOutbound: null, // no network
        limits: { cpuMs: timeoutMs }, // enforced by Cloudflare (not by a local workerd)
      });
    } catch (err) {
      return this.finish("internal", "InternalError", `the Worker could not load the program: ${err}`, []);
    }
    worker
      .getEntrypoint()
      .run(sandbox, new Host(this))
      .then(
        () => this.finish("internal", "InternalError", say("engine_stopped"), []),
        (err) => {
          const message = String((err && err.message) || err);
          // The program's module did not compile: the dynamic Worker could not start.
          const syntax = /Uncaught (SyntaxError: .*)\n\s*at program\.ts:(\d+):(\d+)/.exec(message);
          if (syntax) {
            const frames = [["<program>", ...this.position(Number(syntax[2]), Number(syntax[3]))]];
            return this.finish("syntax", "SyntaxError", syntax[1].slice("SyntaxError: ".length), frames);
          }
          if (/^Failed to start Worker:[\s\S]*\bat library\.js/.test(message)) {
            const cause = /Uncaught (.*)/.exec(message)?.[1] ?? message;
            return this.finish("runtime", "InternalError", say("library_failed", { cause }), []);
          }
          const limit = /(Maximum call stack size exceeded|Invalid string length)/.exec(message);
          if (limit) return this.finish("memory", "RangeError", limit[1], []);
          if (/memory limit|out of memory/i.test(message)) {
            return this.finish("memory", "MemoryError", say("memory", { mib: spec.memoryMib }), []);
          }
          if (/CPU time/i.test(message)) {
            return this.finish("timeout", "TimeoutError", say("timeout", { ms: timeoutMs }), []);
          }
          this.finish("internal", "InternalError", `${say("engine_stopped")}: ${message}`, []);
        },
      );
  }

  // -- the sandbox's side: each line checked, the limits held here too -----------------

  // The sandbox is the program's own: every line is checked to be well formed before it goes
  // to the host, and the limits are held here again. A line that is not is the end of the run.
  fromSandbox(line) {
    if (this.finished || this.spec === null) return;
    const spec = this.spec;
    const broken = () => this.finish("internal", "InternalError", say("engine_stopped"), []);
    if (line.length > LINE_MAX) {
      return this.finish("result", "ResultError", say("result_too_large", { bytes: line.length, max: spec.maxResult }), []);
    }
    const kind = line.charCodeAt(0);
    if (kind === 99 /* c */) {
      const call = /^c (\d+) (\d+) \{/.exec(line);
      if (call === null || Number(call[1]) !== this.calls + 1 || Number(call[2]) >= spec.names.length) return broken();
      if (++this.calls > spec.maxCalls) {
        return this.finish("runtime", "Error", say("call_limit", { tool: "external_*", max: spec.maxCalls }), []);
      }
      return this.emit(line);
    }
    if (kind === 107 /* k */) {
      // A host library's check of a value: no tool call, counted by no limit.
      const check = /^k (\d+) (\d+) /.exec(line);
      if (check === null || Number(check[1]) !== this.checks + 1) return broken();
      this.checks++;
      return this.emit(line);
    }
    if (kind === 108 /* l */) {
      if (this.logCut) return;
      const text = /^l [0-4] \d+(?:\.\d+)? /.exec(line);
      if (text === null || !isJsonString(line.slice(text[0].length))) return broken();
      const size = encoder.encode(line).length;
      if (++this.logLines > spec.maxLogLines + 1 || (this.logBytes += size) > spec.maxLogBytes * 2 + 4096) {
        this.logCut = true;
        if (spec.failLog) {
          const limits = { lines: spec.maxLogLines, bytes: spec.maxLogBytes };
          return this.finish("output_limit", "OutputLimitError", say("log_limit", limits), []);
        }
        return;
      }
      return this.emit(line);
    }
    if (kind === 114 /* r */) {
      const text = /^r \d+(?:\.\d+)? /.exec(line);
      if (text === null || !isJsonString(line.slice(text[0].length))) return broken();
      if ((this.reportBytes += line.length) > REPORT_BYTES_MAX) return;
      return this.emit(line);
    }
    if (kind === 111 /* o */) {
      const bytes = encoder.encode(line).length - 2;
      if (bytes > spec.maxResult) {
        return this.finish("result", "ResultError", say("result_too_large", { bytes, max: spec.maxResult }), []);
      }
      return this.end(line);
    }
    if (kind === 102 /* f */) {
      // The sandbox's own errors (syntax, deadlock, a limit): re-made here from checked parts.
      let parts;
      try {
        parts = JSON.parse(line.slice(2));
      } catch {
        return broken();
      }
      const [fkind, name, message] = Array.isArray(parts) ? parts : [];
      if (!SANDBOX_KINDS.has(fkind) || typeof name !== "string" || typeof message !== "string") return broken();
      return this.finish(fkind, name, message, []);
    }
    if (kind === 70 /* F */) return this.failed(line.charCodeAt(2) === 49, line.slice(4));
    return broken();
  }

  // The program's error, as the sandbox described it: worded and placed here, as host.mjs
  // does for V8.
  failed(memoryExceeded, description) {
    const spec = this.spec;
    const memoryMessage = say("memory", { mib: spec.memoryMib });
    const run = { position: this.position, names: spec.names, memoryExceeded, memoryMessage, say };
    this.finish(...describeFailure(description, run));
  }

  finish(kind, name, message, frames) {
    this.end("f " + JSON.stringify([kind, name, message, frames]));
  }

  end(line) {
    if (this.finished) return;
    this.emit(line);
    this.finished = true;
    this.stopSandbox();
    // Queued after the batch with the outcome, so it closes once that has gone.
    queueMicrotask(() =>
      this.sending.then(() => {
        try {
          this.socket.close(1000, "done");
        } catch {}
      }),
    );
  }

  // Lines go to the host in batches: the lines made in one turn, one signed frame.
  emit(line) {
    if (this.finished) return;
    this.batch.push(line);
    if (!this.batching) {
      this.batching = true;
      queueMicrotask(() => this.sendBatch());
    }
  }

  sendBatch() {
    this.batching = false;
    const lines = this.batch;
    this.batch = [];
    if (lines.length === 0) return;
    const text = lines.join("\n");
    const seq = ++this.seqOut;
    const signed = sign(this.key, `${this.nonce}\nw\n${seq}\n${text}`);
    this.sending = this.sending.then(async () => {
      const signature = await signed;
      try {
        this.socket.send(`${seq} ${signature} ${text}`);
      } catch {}
    });
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    if (url.pathname !== "/execute") return new Response("not found", { status: 404 });
    if (request.headers.get("upgrade") !== "websocket") return new Response("a WebSocket is expected", { status: 426 });
    if (typeof env.SECRET !== "string" || env.SECRET.length < 16) {
      return new Response("the Worker has no CODEMODE secret (16 characters or more)", { status: 500 });
    }
    if (cachedKey === null || cachedKey.secret !== env.SECRET) {
      cachedKey = { secret: env.SECRET, key: await keyFor(env.SECRET) };
    }
    const key = cachedKey.key;
    const nonce = await admitted(request, key);
    if (nonce === null) return new Response("refused", { status: 401 });
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    const run = new Run(server, key, nonce, env);
    server.addEventListener("message", (event) => run.received(event.data));
    server.addEventListener("close", () => run.closed());
    server.addEventListener("error", () => run.closed());
    return new Response(null, { status: 101, webSocket: client });
  },
};
