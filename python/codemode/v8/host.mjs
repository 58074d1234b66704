// The V8 engine process of codemode.V8Driver: one Node.js process, driven by Python over
// stdin/stdout, that runs one execution at a time, each in a V8 isolate of its own.
//
// The program never runs in this process's Node.js realm. Each execution gets a fresh
// isolate (isolated-vm) holding nothing but ECMAScript built-ins and the sandbox prelude
// below; it is disposed the moment the execution ends, and the next execution gets another.
// No object of this realm is ever handed to an isolate: the prelude receives a handful of
// host functions (isolated-vm Callbacks, which copy primitive arguments across) and every
// value crosses as a string or a number. The isolate runs on this process's main thread,
// entered synchronously for each event (start, tool result, timer): its microtasks run to
// the end before control comes back. A program that never gives control back is ended by
// Python killing this process, which then serves nobody else.
//
// Python -> engine (one line each):
//   R <json spec>                        run: {code, names, stackKb, maxCalls, maxLogLines,
//                                        maxLogBytes, failLog, maxResult, channel, library}
//   S <callId> <status> <json payload>   settle a tool call (0 ok, 1 tool error, 2 invalid)
//   K <checkId> <json answer>            answer a check: null or [path, message]
// Engine -> Python (one line each):
//   i                                    ready for a run (after start-up and after each run)
//   c <callId> <toolIndex> <json args>   a tool call
//   k <checkId> <schemaIndex> <json>     a host library's check of a value (no tool call)
//   l <level> <timestampMs> <json text>  a console line
//   r <timestampMs> <json text>          a line of the report channel (when spec.channel)
//   o <json result>                      finished with a result
//   f <json [kind, name, message, [[fn, line, column], ...]]>   finished with an error
//
// argv: <isolated-vm addon> <memory MiB> <sandbox prelude> <message table JSON>

import { readFileSync, readSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { setFlagsFromString } from "node:v8";
import { describeFailure, positionIn } from "./program_errors.mjs";

const [ADDON, MEM_ARG, SHARED_PRELUDE, MESSAGES_JSON] = process.argv.slice(2);
// The one table of messages of both engines (crates/isolate/src/messages.json).
const MESSAGES = JSON.parse(MESSAGES_JSON);
const say = (key, values = {}) =>
  MESSAGES[key].replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));
const ivm = createRequire(import.meta.url)(ADDON).ivm;
const MEM_MIB = Math.max(1, Number(MEM_ARG) || 128);
const MEM_BYTES = MEM_MIB * 1024 * 1024;
// isolated-vm takes whole MiB, at least 8; below that our own accounting holds the limit.
const ISOLATE_MIB = Math.max(8, MEM_MIB);

// An isolate's stack is V8's --stack-size when the isolate is made (its code runs on this
// process's main thread, below the host's own frames). V8 needs this much to run the prelude
// and a program at all; the main thread's stack, less room for the host, bounds it above.
const STACK_KB_MIN = 128;
const STACK_KB_HOST = 984; // V8's default, restored for everything else
const STACK_KB_MAX = Math.max(STACK_KB_MIN, mainStackKb() - 1024);
const stackKbFor = (kb) => Math.min(STACK_KB_MAX, Math.max(STACK_KB_MIN, Math.floor(Number(kb)) || 1024));

function mainStackKb() {
  try {
    const soft = process.report.getReport().userLimits.stack_size_bytes.soft;
    return typeof soft === "number" ? Math.floor(soft / 1024) : 64 * 1024;
  } catch {
    return 8 * 1024;
  }
}

// The one parameter is the report channel when the run asks for it (else undefined): code
// placed before the model's on line 1 takes it and clears it.
const WRAP_PREFIX = "(async function (__codemode_channel) {";
const WRAP_SUFFIX = "\n})";
const PROGRAM_FILE = "program.ts";
const REPORT_BYTES_MAX = 16 << 20;
const NOT_ONE_BODY = say("not_one_body");
const MEMORY_MESSAGE = say("memory", { mib: MEM_MIB });

// Milliseconds since the epoch, with the fraction (the clock of Python's events).
const now = () => performance.timeOrigin + performance.now();

// -- output ----------------------------------------------------------------------------

// Every line is JSON text made by JSON.stringify, which writes a lone surrogate as an escape
// (and a pair as itself): each becomes U+FFFD here, the one rule of both engines. The scan
// goes left to right over escapes, so an escaped backslash followed by "ud800" is left alone.
const LONE_SURROGATE = /\\(?:\\|u(d[89a-f][0-9a-f]{2}))/g;
const wellFormed = (match, hex) => (hex === undefined ? match : "\\ufffd");

function send(line) {
  if (line.includes("\\ud")) line = line.replace(LONE_SURROGATE, wellFormed);
  if (line.charCodeAt(0) === 99 /* c */ || line.charCodeAt(0) === 107 /* k */) answerSoon = true;
  const text = line + "\n";
  let written = 0;
  try {
    written = writeSync(1, text); // the common case: the whole line at once, no Buffer made
  } catch (err) {
    if (err.code !== "EAGAIN") process.exit(0); // Python went away
  }
  if (written >= text.length && written === Buffer.byteLength(text)) return;
  const data = Buffer.from(text, "utf8"); // the pipe was full: the rest, as bytes
  let off = written;
  while (off < data.length) {
    try {
      off += writeSync(1, data, off, data.length - off);
    } catch (err) {
      if (err.code !== "EAGAIN") process.exit(0);
    }
  }
}

// -- the isolate of the next run, made ahead of time -----------------------------------

let ready = null; // { isolate, stackKb, context, api } for the next run
let lastStackKb = stackKbFor(1024);
let current = null; // the running Execution

// An isolate whose programs may use `stackKb` of stack: V8 reads the flag when the isolate
// is first entered, and it is this process's own again right after.
function prepare(stackKb) {
  setFlagsFromString(`--stack-size=${stackKb}`);
  try {
    return makeIsolate(stackKb);
  } finally {
    setFlagsFromString(`--stack-size=${STACK_KB_HOST}`);
  }
}

function makeIsolate(stackKb) {
  const isolate = new ivm.Isolate({
    memoryLimit: ISOLATE_MIB,
    onCatastrophicError: () => {
      // isolated-vm's word that this process is no longer sound: fail the run and leave.
      if (current !== null) current.finish("memory", "MemoryError", MEMORY_MESSAGE, []);
      process.exit(70);
    },
  });
  const context = isolate.createContextSync();
  const holder = { run: null };
  const hosts = [
    (index, json) => (holder.run === null ? -1 : holder.run.hostCall(index, json)),
    (level, text) => holder.run?.hostLog(level, text),
    (id, ms) => holder.run?.hostTimer(id, ms),
    (id) => holder.run?.hostClearTimer(id),
    (bytes) => (holder.run === null ? false : holder.run.hostAlloc(bytes)),
    (text) => holder.run?.hostReport(text),
    (json, over) => holder.run?.hostDone(json, over),
    (description) => holder.run?.hostFail(description),
    (index, json) => (holder.run === null ? -1 : holder.run.hostCheck(index, json)),
  ].map((fn) => new ivm.Callback(fn));
  // The prelude is compiled with V8's code cache of the first isolate: parsing and compiling
  // it again in every isolate cost more than running it.
  const script = isolate.compileScriptSync(SETUP, {
    filename: "prelude.js",
    ...(setupCache === null ? { produceCachedData: true } : { cachedData: setupCache }),
  });
  if (setupCache === null || script.cachedDataRejected) setupCache = script.cachedData ?? null;
  const setup = script.runSync(context, { reference: true, release: true });
  const api = setup.applySync(undefined, hosts, { result: { reference: true } });
  setup.release();
  const entry = (name) => api.getSync(name, { reference: true });
  return {
    isolate,
    stackKb,
    context,
    holder,
    configure: entry("configure"),
    invoke: entry("invoke"),
    settle: entry("settle"),
    settleCheck: entry("settleCheck"),
    fire: entry("fire"),
    sourceOf: entry("sourceOf"),
  };
}

// -- one execution ---------------------------------------------------------------------

class Execution {
  constructor(engine, spec) {
    this.engine = engine;
    this.spec = spec;
    this.finished = false;
    this.calls = 0;
    this.checks = 0;
    this.pendingCalls = 0;
    this.timers = new Map();
    this.logLines = 0;
    this.logBytes = 0;
    this.logCut = false;
    this.reportBytes = 0;
    this.memoryExceeded = false;
    this.position = positionIn(spec.code, WRAP_PREFIX);
  }

  start() {
    const { spec, engine } = this;
    let program;
    try {
      engine.configure.applySync(undefined, [JSON.stringify(spec.names), spec.maxCalls, MEM_BYTES, spec.maxResult]);
      const wrapped = WRAP_PREFIX + spec.code + WRAP_SUFFIX;
      const script = engine.isolate.compileScriptSync(wrapped, { filename: PROGRAM_FILE });
      // The program must be exactly the body of the wrapper function, as the engine reads
      // it: text that closes the wrapper early would run at the top level. Until the check
      // passes, the host functions answer no run (`holder.run` is null), so nothing the
      // script does reaches the host (no call, line, report or timer); its value
      // must then be a function whose source is the whole wrapper, or the run is a syntax
      // error and this isolate, with whatever the top level did, is thrown away.
      program = script.runSync(engine.context, { reference: true, release: true });
      const source = engine.sourceOf.applySync(undefined, [program.derefInto()]);
      if (source !== wrapped.slice(1, -1)) {
        return this.finish("syntax", "SyntaxError", NOT_ONE_BODY, []);
      }
      engine.holder.run = this;
    } catch (err) {
      if (err && err.name === "SyntaxError") return this.finishSyntax(err);
      if (this.isolateFailed(err)) return this.engineFailed(err);
      // Only text that left the wrapper can throw while the script runs.
      return this.finish("syntax", "SyntaxError", NOT_ONE_BODY, []);
    }
    let library;
    try {
      // A host library runs in the sandbox, before the program (see quickjs.py).
      if (typeof spec.library === "string") {
        library = engine.context.evalSync(spec.library, { filename: "library.js", reference: true });
      }
    } catch (err) {
      if (this.isolateFailed(err)) return this.engineFailed(err);
      const cause = `${err && err.name}: ${err && err.message}`;
      return this.finish("runtime", "InternalError", say("library_failed", { cause }), []);
    }
    this.enter(engine.invoke, [program.derefInto(), spec.channel === true, library?.derefInto()]);
  }

  // Run the isolate for one event; its microtasks run before this returns.
  enter(entry, args) {
    if (this.finished) return;
    try {
      entry.applySync(undefined, args);
    } catch (err) {
      return this.engineFailed(err);
    }
    if (this.finished) return;
    if (this.memoryExceeded) return this.finish("memory", "MemoryError", MEMORY_MESSAGE, []);
    if (this.pendingCalls === 0 && this.timers.size === 0) {
      this.finish("runtime", "DeadlockError", say("deadlock"), []);
    }
  }

  // The isolate itself failed (out of memory, disposed): never the program's doing to report.
  // Did `err` come from the isolate itself (its memory, or its end) rather than from code?
  isolateFailed(err) {
    return this.memoryExceeded || /memory limit|disposed/.test(String(err && err.message));
  }

  engineFailed(err) {
    if (this.finished) return;
    const message = String((err && err.message) || err);
    if (this.memoryExceeded || /memory limit/.test(message)) {
      return this.finish("memory", "MemoryError", MEMORY_MESSAGE, []);
    }
    this.finish("internal", "InternalError", say("engine_stopped"), []);
  }

  settle(callId, status, payload) {
    if (this.finished) return;
    this.pendingCalls--;
    this.enter(this.engine.settle, [callId, status, payload]);
  }

  settleCheck(checkId, payload) {
    if (this.finished) return;
    this.pendingCalls--;
    this.enter(this.engine.settleCheck, [checkId, payload]);
  }

  // A check is not a tool call: no limit counts it, it has ids of its own.
  hostCheck(index, json) {
    if (this.finished) return -1;
    this.checks++;
    this.pendingCalls++;
    send("k " + this.checks + " " + (index | 0) + " " + json);
    return this.checks;
  }

  hostCall(index, json) {
    if (this.finished) return -1;
    if (this.calls >= this.spec.maxCalls) return 0;
    this.calls++;
    this.pendingCalls++;
    send("c " + this.calls + " " + (index | 0) + " " + json);
    return this.calls;
  }

  hostReport(text) {
    if (this.finished) return;
    text = typeof text === "string" ? text : "";
    this.reportBytes += text.length;
    if (this.reportBytes > REPORT_BYTES_MAX) return;
    send("r " + now() + " " + JSON.stringify(text));
  }

  hostLog(level, text) {
    if (this.finished || this.logCut) return;
    text = typeof text === "string" ? text : "";
    level = level | 0;
    const prefix = ["", "INFO: ", "WARN: ", "ERROR: ", "DEBUG: "][level] ?? "";
    const spec = this.spec;
    const size = Buffer.byteLength(text) + prefix.length;
    if (this.logLines + 1 > spec.maxLogLines || this.logBytes + size > spec.maxLogBytes) {
      this.logCut = true;
      if (spec.failLog) {
        const limits = { lines: spec.maxLogLines, bytes: spec.maxLogBytes };
        this.finish("output_limit", "OutputLimitError", say("log_limit", limits), []);
      } else {
        const marker = say("log_truncated", { lines: spec.maxLogLines, bytes: spec.maxLogBytes });
        send("l 2 " + now() + " " + JSON.stringify(marker));
      }
      return;
    }
    this.logLines++;
    this.logBytes += size;
    send("l " + level + " " + now() + " " + JSON.stringify(prefix + text));
  }

  hostTimer(id, ms) {
    if (this.finished) return;
    // Node fires delays above 2^31-1 ms at once; here they wait (past any deadline).
    const delay = Math.min(Math.max(0, Number(ms) || 0), 2 ** 31 - 1);
    const handle = setTimeout(() => {
      this.timers.delete(id);
      this.enter(this.engine.fire, [id]);
    }, delay);
    this.timers.set(id, handle);
  }

  hostClearTimer(id) {
    const handle = this.timers.get(id);
    if (handle !== undefined) {
      clearTimeout(handle);
      this.timers.delete(id);
    }
  }

  // Is there room for `bytes` more of memory the heap limit does not see yet?
  hostAlloc(bytes) {
    if (!(bytes >= 0)) return true; // not a size: the engine reports its own error
    let fits = bytes <= MEM_BYTES;
    if (fits && bytes >= 65536) {
      const s = this.engine.isolate.getHeapStatisticsSync();
      fits = s.used_heap_size + s.externally_allocated_size + bytes <= MEM_BYTES;
    }
    if (!fits) this.memoryExceeded = true;
    return fits;
  }

  // over: base64 the adapter left out of `json` past the result's limit (its length).
  hostDone(json, over) {
    if (this.finished) return;
    if (this.memoryExceeded) return this.finish("memory", "MemoryError", MEMORY_MESSAGE, []);
    const bytes = Buffer.byteLength(json) + (Number(over) || 0);
    if (bytes > this.spec.maxResult) {
      const size = { bytes, max: this.spec.maxResult };
      return this.finish("result", "ResultError", say("result_too_large", size), []);
    }
    this.end("o " + json);
  }

  // description: JSON {kind (a host error's, or "result" with its cause) or null, name,
  // message, stack or null}, made in the isolate (a null-prototype object).
  hostFail(description) {
    if (this.finished) return;
    const run = {
      position: this.position,
      names: this.spec.names,
      memoryExceeded: this.memoryExceeded,
      memoryMessage: MEMORY_MESSAGE,
      say,
    };
    this.finish(...describeFailure(description, run));
  }

  finishSyntax(err) {
    let message = "invalid program";
    let frames = [];
    try {
      message = String(err.message);
      const m = /program\.ts:(\d+):(\d+)/.exec(String(err.stack));
      if (m) frames = [["<program>", ...this.position(Number(m[1]), Number(m[2]))]];
      message = message.replace(/ \[program\.ts:\d+:\d+\]$/, "");
    } catch {}
    this.finish(err && err.name === "SyntaxError" ? "syntax" : "runtime", "SyntaxError", message, frames);
  }

  finish(kind, name, message, frames) {
    this.end("f " + JSON.stringify([kind, name, message, frames]));
  }

  // Send the outcome, then drop the isolate at once (whatever the program left running
  // stops here) and make the next one.
  end(line) {
    if (this.finished) return;
    this.finished = true;
    for (const handle of this.timers.values()) clearTimeout(handle);
    this.timers.clear();
    send(line);
    this.engine.holder.run = null;
    if (current === this) current = null;
    try {
      this.engine.isolate.dispose();
    } catch {}
    setImmediate(readyForNext);
  }
}

function readyForNext() {
  if (ready === null) ready = prepare(lastStackKb);
  send("i");
}

// -- commands --------------------------------------------------------------------------

function command(line) {
  const kind = line.charCodeAt(0);
  if (kind === 83 /* S */) {
    const a = line.indexOf(" ", 2);
    const b = line.indexOf(" ", a + 1);
    if (current !== null) {
      current.settle(Number(line.slice(2, a)), Number(line.slice(a + 1, b)), line.slice(b + 1));
    }
  } else if (kind === 75 /* K */) {
    const a = line.indexOf(" ", 2);
    if (current !== null) current.settleCheck(Number(line.slice(2, a)), line.slice(a + 1));
  } else if (kind === 82 /* R */) {
    if (current !== null || ready === null) process.exit(71); // Python breaks its own protocol
    const spec = JSON.parse(line.slice(2));
    let engine = ready;
    ready = null;
    // The next isolate is made with the last run's stack; another limit needs another one.
    lastStackKb = stackKbFor(spec.stackKb);
    if (engine.stackKb !== lastStackKb) {
      engine.isolate.dispose();
      engine = prepare(lastStackKb);
    }
    current = new Execution(engine, spec);
    current.start();
  }
}

// Input. Lines are found by scanning each chunk once: a 40 MB line costs one pass, not one
// per chunk. After a tool call went out, the answer often follows within microseconds (Python
// polls for the call in the same way): stdin is then polled with non-blocking reads for up to
// SPIN_MS before control goes back to libuv, which would cost a wake-up from epoll. The poll
// runs only after a command sent a call, and for SPIN_MS at most each time.
const SPIN_MS = 0.05;
const spinBuffer = Buffer.allocUnsafe(1 << 16);
let parts = [];
let answerSoon = false; // a tool call was sent while the last commands ran

function take(chunk, copyRest) {
  let start = 0;
  let nl;
  while ((nl = chunk.indexOf(10, start)) >= 0) {
    parts.push(chunk.subarray(start, nl));
    const line = parts.length === 1 ? parts[0].toString("utf8") : Buffer.concat(parts).toString("utf8");
    parts = [];
    start = nl + 1;
    if (line.length > 0) command(line);
  }
  if (start < chunk.length) {
    const rest = chunk.subarray(start);
    parts.push(copyRest ? Buffer.from(rest) : rest);
  }
}

// Polls that found the answer lately, 0 to 8. When Python and this process share one CPU
// (a loaded machine), polling only delays Python's answer: after misses it pauses, and
// tries again every 16th call.
let pollScore = 8;
let pollSkipped = 0;

// The next chunk of input if it arrives within SPIN_MS, else null.
function poll() {
  if (pollScore === 0 && (++pollSkipped & 15) !== 0) return null;
  const until = performance.now() + SPIN_MS;
  for (;;) {
    try {
      const n = readSync(0, spinBuffer, 0, spinBuffer.length, null);
      if (n === 0) process.exit(0); // Python went away
      if (pollScore < 8) pollScore++;
      return spinBuffer.subarray(0, n);
    } catch (err) {
      if (err.code !== "EAGAIN") process.exit(0);
    }
    if (performance.now() >= until) {
      pollScore = Math.max(0, pollScore - 2);
      return null;
    }
  }
}

process.stdin.on("data", (chunk) => {
  let copyRest = false;
  for (;;) {
    answerSoon = false;
    take(chunk, copyRest);
    if (!answerSoon) return;
    chunk = poll();
    if (chunk === null) return;
    copyRest = true; // spinBuffer is reused
  }
});
process.stdin.on("end", () => process.exit(0));

// ---------------------------------------------------------------------------------------
// The V8 side of the sandbox prelude (adapter.js, shared with the Cloudflare Worker), with the
// sandbox prelude both engines share put in it.
const ADAPTER = readFileSync(new URL("./adapter.js", import.meta.url), "utf8")
  .replace("__SHARED_PRELUDE__", () => SHARED_PRELUDE);

// The prelude as one function of the host functions, compiled once per isolate.
const SETUP = "(function ($0, $1, $2, $3, $4, $5, $6, $7, $8) {" + ADAPTER + "\n})";
let setupCache = null; // V8's code cache of SETUP (a Buffer), from the first isolate

ready = prepare(lastStackKb);
send("i");
