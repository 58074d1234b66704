// The V8 host of codemode.V8Driver: one Node.js process, driven by Python over stdin/stdout.
//
// Main thread: reads commands from Python (one per line), keeps pools of pre-warmed worker
// threads keyed by their resource limits, and forwards each worker's output to stdout.
// Worker thread: runs one execution at a time, each in a fresh `vm` context holding nothing
// but ECMAScript built-ins, console, timers and the tools. A worker's V8 heap is capped by
// `resourceLimits`, so a program that exhausts it kills only its worker (V8 out-of-memory is
// fatal for the isolate, never for this process). Timeouts and cancellation terminate the
// worker. A worker whose program left work running (a microtask loop, say) is terminated
// too; an idle one serves the next execution with a new context.
//
// Python -> host (one line each):
//   W <memMiB> <stackKiB> <count>             keep <count> workers ready for these limits
//   R <id> <json spec>                        run: {code, names, mem, stack, maxCalls, maxLogLines,
//                                             maxLogBytes, failLog, maxResult, channel, library}
//   S <id> <callId> <status> <json payload>   settle a tool call (0 ok, 1 tool error, 2 invalid)
//   K <id>                                    kill the run (timeout, cancellation)
// Host -> Python (one JSON array per line):
//   [id, "c", callId, toolIndex, args]        a tool call
//   [id, "l", level, text, timestampMs]       a console line
//   [id, "r", text, timestampMs]              a line of the report channel (when spec.channel)
//   [id, "d", true, resultJson]               finished with a result (the JSON as a string)
//   [id, "d", false, kind, name, message, [[fn, line, column], ...]]

import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

// The one parameter is the report channel when the run asks for it (else undefined): code
// placed before the model's on line 1 takes it and clears it.
const WRAP_PREFIX = "(async function (__codemode_channel) {";
const REPORT_BYTES_MAX = 16 << 20;
const WRAP_SUFFIX = "\n})";
const PROGRAM_FILE = "program.ts";
const ENGINE_LIMITS =
  /^(Maximum call stack size exceeded|Invalid string length|Invalid array length|Invalid typed array length|Array buffer allocation failed)|^memory limit exceeded/;

if (isMainThread) {
  main();
} else {
  workerMain();
}

// ---------------------------------------------------------------------------------------
// Main thread

function main() {
  const MAX_WORKERS = Math.max(1, Number(process.env.CODEMODE_V8_MAX_WORKERS) || 64);
  const RECYCLE_AFTER = 500;
  const IDLE_GRACE_MS = 200;
  const IDLE_RETIRE_MS = 10000;
  const pools = new Map(); // key -> { idle: WorkerSlot[], want: number, starting: number }
  const runs = new Map(); // run id -> WorkerSlot
  const queue = []; // runs waiting for a worker: { id, spec, key }
  let liveWorkers = 0;

  const out = process.stdout;
  const write = (line) => out.write(line + "\n");
  const fail = (id, kind, name, message) =>
    write(JSON.stringify([id, "d", false, kind, name, message, []]));

  function pool(key) {
    let p = pools.get(key);
    if (p === undefined) {
      p = { idle: [], want: 0, starting: 0 };
      pools.set(key, p);
    }
    return p;
  }

  function keyOf(mem, stack) {
    return mem + ":" + stack;
  }

  function spawn(key) {
    const [mem, stack] = key.split(":").map(Number);
    liveWorkers++;
    const slot = { key, worker: null, run: null, ready: false, executions: 0, idleTimer: null, dead: false };
    const young = Math.max(1, Math.min(16, Math.floor(mem / 8)));
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { memBytes: Math.floor(mem * 1024 * 1024) },
      resourceLimits: {
        maxOldGenerationSizeMb: Math.max(1, mem),
        maxYoungGenerationSizeMb: young,
        stackSizeMb: Math.max(0.25, stack / 1024),
      },
      stdout: false,
      stderr: false,
      env: {},
      argv: [],
      trackUnmanagedFds: true,
    });
    slot.worker = worker;
    const p = pool(key);
    p.starting++;
    worker.on("message", (m) => onWorkerMessage(slot, m));
    worker.on("error", (err) => onWorkerGone(slot, err));
    worker.on("exit", () => onWorkerGone(slot, null));
    return slot;
  }

  function onWorkerMessage(slot, m) {
    if (typeof m === "string") {
      write(m); // a line for Python, already formatted by the worker
      return;
    }
    if (m.t === "ready") {
      slot.ready = true;
      pool(slot.key).starting--;
      release(slot);
    } else if (m.t === "done") {
      // The run's result line was sent; wait for the worker to go idle.
      if (slot.run !== null) runs.delete(slot.run);
      slot.run = null;
      slot.idleTimer = setTimeout(() => retire(slot), IDLE_GRACE_MS);
    } else if (m.t === "idle") {
      if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
      slot.idleTimer = null;
      slot.executions++;
      if (slot.executions >= RECYCLE_AFTER || m.heapFull) retire(slot);
      else release(slot);
    }
  }

  function onWorkerGone(slot, err) {
    if (slot.dead) return;
    slot.dead = true;
    liveWorkers--;
    if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
    const p = pool(slot.key);
    if (!slot.ready) p.starting--;
    const at = p.idle.indexOf(slot);
    if (at >= 0) p.idle.splice(at, 1);
    if (slot.run !== null) {
      const id = slot.run;
      runs.delete(id);
      slot.run = null;
      if (err !== null && err.code === "ERR_WORKER_OUT_OF_MEMORY") {
        const mem = slot.key.split(":")[0];
        fail(id, "memory", "MemoryError", `the execution exceeded its memory limit (${mem} MiB)`);
      } else {
        const why = err === null ? "exited" : String(err.message || err);
        fail(id, "runtime", "InternalError", `the V8 worker stopped unexpectedly: ${why}`);
      }
    }
    slot.worker.terminate().catch(() => {});
    refill();
  }

  function retire(slot) {
    if (slot.dead) return;
    slot.dead = true;
    liveWorkers--;
    if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
    const p = pool(slot.key);
    const at = p.idle.indexOf(slot);
    if (at >= 0) p.idle.splice(at, 1);
    if (slot.run !== null) runs.delete(slot.run);
    slot.run = null;
    slot.worker.terminate().catch(() => {});
    refill();
  }

  // A worker is free: give it to a queued run with its limits, else keep it idle. Idle
  // workers beyond the number wanted for their limits leave after a while.
  function release(slot) {
    const i = queue.findIndex((q) => q.key === slot.key);
    if (i >= 0) {
      const [q] = queue.splice(i, 1);
      start(slot, q.id, q.spec);
      return;
    }
    const p = pool(slot.key);
    p.idle.push(slot);
    if (p.idle.length > p.want) slot.idleTimer = setTimeout(() => retire(slot), IDLE_RETIRE_MS);
    refill();
  }

  // Start workers for queued runs and to keep each pool's wanted number ready.
  function refill() {
    const waiting = new Map();
    for (const q of queue) waiting.set(q.key, (waiting.get(q.key) || 0) + 1);
    for (const [key, n] of waiting) {
      const p = pool(key);
      while (p.starting < n && liveWorkers < MAX_WORKERS) spawn(key);
    }
    for (const [key, p] of pools) {
      while (p.idle.length + p.starting < p.want && liveWorkers < MAX_WORKERS) spawn(key);
    }
    if (liveWorkers >= MAX_WORKERS && queue.length > 0) {
      // Make room: an idle worker of limits nobody is waiting for.
      for (const p of pools.values()) {
        if (p.idle.length > 0 && !waiting.has(p.idle[0].key)) {
          retire(p.idle[0]);
          return;
        }
      }
    }
  }

  function start(slot, id, spec) {
    if (slot.idleTimer !== null) clearTimeout(slot.idleTimer);
    slot.idleTimer = null;
    slot.run = id;
    runs.set(id, slot);
    slot.worker.postMessage({ t: "run", id, spec });
  }

  function run(id, spec) {
    const key = keyOf(spec.mem, spec.stack);
    const p = pool(key);
    if (p.want === 0) p.want = 1;
    const slot = p.idle.pop();
    if (slot !== undefined) {
      start(slot, id, spec);
      refill();
      return;
    }
    queue.push({ id, spec, key });
    refill();
  }

  function kill(id) {
    const at = queue.findIndex((q) => q.id === id);
    if (at >= 0) {
      queue.splice(at, 1);
      return;
    }
    const slot = runs.get(id);
    if (slot !== undefined) {
      runs.delete(id);
      slot.run = null;
      retire(slot);
    }
  }

  function command(line) {
    const kind = line.charCodeAt(0);
    if (kind === 83 /* S */) {
      // S <id> <callId> <status> <payload>
      const a = line.indexOf(" ", 2);
      const id = Number(line.slice(2, a));
      const slot = runs.get(id);
      if (slot !== undefined) slot.worker.postMessage(line);
      return;
    }
    const sp = line.indexOf(" ", 2);
    const id = Number(sp < 0 ? line.slice(2) : line.slice(2, sp));
    if (kind === 82 /* R */) {
      run(id, JSON.parse(line.slice(sp + 1)));
    } else if (kind === 75 /* K */) {
      kill(id);
    } else if (kind === 87 /* W */) {
      const [mem, stack, count] = line.slice(2).split(" ").map(Number);
      const p = pool(keyOf(mem, stack));
      p.want = Math.max(p.want, Math.min(count, MAX_WORKERS));
      refill();
    }
  }

  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.length > 0) command(line);
    }
  });
  process.stdin.on("end", () => process.exit(0));
  out.on("error", () => process.exit(0));
}

// ---------------------------------------------------------------------------------------
// Worker thread

function workerMain() {
  const vm = process.getBuiltinModule("node:vm");
  const v8 = process.getBuiltinModule("node:v8");
  const memBytes = workerData.memBytes;
  // Rejections nobody handles belong to the sandbox (or to a dropped context): never fatal.
  process.on("unhandledRejection", () => {});

  let current = null; // the running execution

  parentPort.on("message", (m) => {
    if (typeof m === "string") {
      // S <id> <callId> <status> <payload>
      const a = m.indexOf(" ", 2);
      const b = m.indexOf(" ", a + 1);
      const c = m.indexOf(" ", b + 1);
      const id = Number(m.slice(2, a));
      if (current === null || current.id !== id) return;
      current.settle(Number(m.slice(a + 1, b)), Number(m.slice(b + 1, c)), m.slice(c + 1));
      return;
    }
    if (m.t === "run") {
      current = new Execution(m.id, m.spec);
      current.start();
    }
  });
  parentPort.postMessage({ t: "ready" });

  // Is there room for `bytes` more of ArrayBuffer memory (which the heap limit does not count)?
  function allocationFits(bytes) {
    if (!(bytes >= 0)) return true; // not a size: the engine reports its own error
    if (bytes > memBytes) return false;
    if (bytes < 65536) return true;
    const s = v8.getHeapStatistics();
    return s.used_heap_size + s.external_memory + bytes <= memBytes;
  }

  class Execution {
    constructor(id, spec) {
      this.id = id;
      this.spec = spec;
      this.finished = false;
      this.calls = 0;
      this.nextCall = 1;
      this.pendingCalls = 0;
      this.timers = new Map();
      this.logLines = 0;
      this.logBytes = 0;
      this.logCut = false;
      this.reportBytes = 0;
      this.memoryExceeded = false;
      this.helpers = null;
      this.context = null;
      this.checkScheduled = false;
    }

    send(line) {
      parentPort.postMessage(line);
    }

    start() {
      const spec = this.spec;
      // An ordinary global object of the new realm (not a host object made global): nothing
      // of this thread is on its prototype chain.
      const context = vm.createContext(
        vm.constants.DONT_CONTEXTIFY,
        {
          name: "codemode",
          codeGeneration: { strings: true, wasm: false },
          importModuleDynamically: () => this.noImport(),
        },
      );
      this.context = context;
      const setup = vm.runInContext(PRELUDE, context, { filename: "prelude.js" });
      const self = this;
      this.helpers = setup(
        function hostCall(index, json) {
          return self.hostCall(index, json);
        },
        function hostLog(level, text) {
          self.hostLog(level, text);
        },
        function hostTimer(id, ms) {
          self.hostTimer(id, ms);
        },
        function hostClearTimer(id) {
          self.hostClearTimer(id);
        },
        function hostAlloc(bytes) {
          return self.hostAlloc(bytes);
        },
        function hostReport(text) {
          self.hostReport(text);
        },
        spec.names,
        spec.maxCalls,
      );
      let fn;
      try {
        const script = new vm.Script(WRAP_PREFIX + spec.code + WRAP_SUFFIX, {
          filename: PROGRAM_FILE,
          importModuleDynamically: () => this.noImport(),
        });
        fn = script.runInContext(context);
      } catch (err) {
        this.finishSyntax(err);
        return;
      }
      try {
        // A host library runs in the sandbox's realm, before the program (see quickjs.py).
        const library = typeof spec.library === "string"
          ? vm.runInContext(spec.library, context, { filename: "library.js" })
          : undefined;
        this.helpers.invoke(
          fn,
          spec.channel === true,
          library,
          (value) => this.succeed(value),
          (err) => this.fail(err),
        );
      } catch (err) {
        this.fail(err);
        return;
      }
      this.scheduleCheck();
    }

    noImport() {
      // An error of the sandbox's own realm: nothing of this thread is reachable through it.
      throw this.helpers.hostError("TypeError", "import() is not available in this sandbox", null);
    }

    hostCall(index, json) {
      if (this.finished) return -1;
      if (this.calls >= this.spec.maxCalls) return 0;
      this.calls++;
      const callId = this.nextCall++;
      this.pendingCalls++;
      this.send("[" + this.id + ',"c",' + callId + "," + (index | 0) + "," + json + "]");
      return callId;
    }

    settle(callId, status, payload) {
      if (this.finished) return;
      this.pendingCalls--;
      try {
        this.helpers.settle(callId, status, payload);
      } catch (err) {
        this.fail(err);
        return;
      }
      this.scheduleCheck();
    }

    hostReport(text) {
      if (this.finished) return;
      text = typeof text === "string" ? text : "";
      this.reportBytes += text.length;
      if (this.reportBytes > REPORT_BYTES_MAX) return;
      this.send(JSON.stringify([this.id, "r", text, Date.now()]));
    }

    hostLog(level, text) {
      if (this.finished || this.logCut) return;
      text = typeof text === "string" ? text : "";
      const prefix = ["", "INFO: ", "WARN: ", "ERROR: ", "DEBUG: "][level] ?? "";
      const spec = this.spec;
      const size = Buffer.byteLength(text) + prefix.length;
      if (this.logLines + 1 > spec.maxLogLines || this.logBytes + size > spec.maxLogBytes) {
        this.logCut = true;
        if (spec.failLog) {
          this.finish(
            false,
            "output_limit",
            "OutputLimitError",
            `console output exceeded its limit (${spec.maxLogLines} lines or ${spec.maxLogBytes} bytes)`,
            [],
          );
        } else {
          const marker = `[output truncated: console output is limited to ${spec.maxLogLines} lines and ${spec.maxLogBytes} bytes]`;
          this.send(JSON.stringify([this.id, "l", 2, marker, Date.now()]));
        }
        return;
      }
      this.logLines++;
      this.logBytes += size;
      this.send(JSON.stringify([this.id, "l", level | 0, prefix + text, Date.now()]));
    }

    hostTimer(id, ms) {
      if (this.finished) return;
      const handle = setTimeout(() => {
        this.timers.delete(id);
        if (this.finished) return;
        try {
          this.helpers.fire(id);
        } catch (err) {
          this.fail(err);
          return;
        }
        this.scheduleCheck();
      }, ms);
      this.timers.set(id, handle);
    }

    hostClearTimer(id) {
      const handle = this.timers.get(id);
      if (handle !== undefined) {
        clearTimeout(handle);
        this.timers.delete(id);
      }
      this.scheduleCheck();
    }

    hostAlloc(bytes) {
      if (allocationFits(bytes)) return true;
      this.memoryExceeded = true;
      return false;
    }

    // After the microtasks of this turn: a program awaiting what nothing can settle is stuck.
    scheduleCheck() {
      if (this.checkScheduled || this.finished) return;
      this.checkScheduled = true;
      setImmediate(() => {
        this.checkScheduled = false;
        if (this.finished) return;
        if (this.memoryExceeded) {
          this.failMemory();
        } else if (this.pendingCalls === 0 && this.timers.size === 0) {
          this.finish(
            false,
            "runtime",
            "DeadlockError",
            "the program is awaiting a promise that nothing can settle (no tool call or timer is pending)",
            [],
          );
        }
      });
    }

    succeed(value) {
      if (this.finished) return;
      if (this.memoryExceeded) return this.failMemory();
      let json;
      try {
        json = this.helpers.serialize(value);
      } catch (err) {
        const cause = JSON.parse(this.helpers.describe(err));
        if (this.memoryExceeded) return this.failMemory();
        return this.finish(
          false,
          "result",
          "ResultError",
          `the return value cannot be serialised as JSON: ${cause.name}: ${cause.message}`,
          [],
        );
      }
      const bytes = Buffer.byteLength(json);
      if (bytes > this.spec.maxResult) {
        return this.finish(
          false,
          "result",
          "ResultError",
          `the result is ${bytes} bytes of JSON, over the limit of ${this.spec.maxResult} bytes`,
          [],
        );
      }
      this.finished = true;
      this.send("[" + this.id + ',"d",true,' + JSON.stringify(json) + "]");
      this.end();
    }

    failMemory() {
      this.finish(
        false,
        "memory",
        "MemoryError",
        `the execution exceeded its memory limit (${Math.floor(memBytes / 1048576)} MiB)`,
        [],
      );
    }

    fail(err) {
      if (this.finished) return;
      let described;
      try {
        described = JSON.parse(this.helpers.describe(err));
      } catch {
        described = { kind: null, name: "Error", message: "an exception was thrown that could not be described", stack: null };
      }
      let { kind, name, message } = described;
      const frames = described.stack ? programFrames(described.stack) : [];
      if (kind === "tool" || kind === "invalid_args") {
        // as tagged by the host
      } else if (name === "RangeError" && ENGINE_LIMITS.test(message)) {
        // The stack, or one of V8's own size caps (a string over 2^29 characters, say):
        // catchable inside, a memory failure when uncaught.
        kind = "memory";
      } else if (name === "ReferenceError" && /^external_\S+ is not defined$/.test(message)) {
        const missing = message.slice(0, -" is not defined".length);
        const available = this.spec.names.map((n) => "external_" + n);
        message = `${missing} is not a tool of this execution; available: ${available.length ? available.join(", ") : "(none)"}`;
        kind = "invalid_args";
      } else if (this.memoryExceeded) {
        kind = "memory";
      } else {
        kind = "runtime";
      }
      this.finish(false, kind, name, message, frames);
    }

    finishSyntax(err) {
      let message = "invalid program";
      let frames = [];
      try {
        message = String(err.message);
        const stack = String(err.stack);
        const header = stack.split("\n", 3);
        const m = /^program\.ts:(\d+)/.exec(header[0]);
        if (m) {
          const line = Number(m[1]);
          const caret = header[2] ? header[2].indexOf("^") : -1;
          let column = caret >= 0 ? caret + 1 : 1;
          if (line === 1) column = Math.max(1, column - WRAP_PREFIX.length);
          frames = [["<program>", line, column]];
        }
      } catch {}
      this.finish(false, "syntax", "SyntaxError", message, frames);
    }

    finish(ok, kind, name, message, frames) {
      if (this.finished) return;
      this.finished = true;
      this.send(JSON.stringify([this.id, "d", false, kind, name, message, frames]));
      this.end();
    }

    // Drop the context: its timers stop, later calls of its functions do nothing.
    end() {
      for (const handle of this.timers.values()) clearTimeout(handle);
      this.timers.clear();
      this.helpers = null;
      this.context = null;
      if (current === this) current = null;
      parentPort.postMessage({ t: "done" });
      // Idle means: the microtasks this context left behind have run out.
      setImmediate(() => {
        const s = v8.getHeapStatistics();
        parentPort.postMessage({ t: "idle", heapFull: s.used_heap_size + s.external_memory > memBytes / 2 });
      });
    }
  }

  function programFrames(stack) {
    const frames = [];
    for (const raw of stack.split("\n")) {
      let text = raw.trim();
      if (!text.startsWith("at ")) continue;
      text = text.slice(3);
      if (text.startsWith("async ")) text = text.slice(6);
      const at = text.indexOf(PROGRAM_FILE + ":");
      if (at < 0) continue;
      let fn = text.slice(0, at).trim();
      if (fn.endsWith("(")) fn = fn.slice(0, -1).trim();
      const m = /^(\d+)(?::(\d+))?/.exec(text.slice(at + PROGRAM_FILE.length + 1));
      if (!m) continue;
      const line = Number(m[1]);
      let column = m[2] ? Number(m[2]) : 1;
      if (line === 1) column = Math.max(1, column - WRAP_PREFIX.length);
      if (fn === "" || fn === "<anonymous>" || fn === "eval") fn = "<program>";
      frames.push([fn, line, column]);
    }
    return frames;
  }
}

// ---------------------------------------------------------------------------------------
// The sandbox prelude: evaluated in every fresh context before the program. It receives the
// host functions and keeps them in this closure, out of the program's reach. Every value that
// leaves it is a string or a number; every error the program can see is of its own realm.

const PRELUDE = String.raw`(function (hostCall, hostLog, hostTimer, hostClearTimer, hostAlloc, hostReport, toolNames, maxCalls) {
  "use strict";
  const G = globalThis;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const define = Object.defineProperty;
  const PromiseCtor = Promise;
  const then = Promise.prototype.then;
  const apply = Reflect.apply;
  const ErrorCtor = Error;
  const RangeErrorCtor = RangeError;
  const hostErrors = new WeakMap();
  const timers = new Map();
  const pending = new Map();
  let nextTimer = 1;

  // One sandbox, one thread, no host: none of these belong here.
  delete G.SharedArrayBuffer;
  delete G.Atomics;
  delete G.WebAssembly;
  // Stack traces are formatted by the engine; the program cannot hook into the host's.
  define(ErrorCtor, "prepareStackTrace", { value: undefined, writable: false, configurable: false });
  define(G, "Error", { value: ErrorCtor, writable: false, enumerable: false, configurable: false });

  function bridgeFailed() {
    // A host function failed (e.g. the stack ran out on entering it): report it as this
    // realm's error, never the host's.
    return new RangeErrorCtor("Maximum call stack size exceeded");
  }

  // ArrayBuffer memory is outside the V8 heap limit: count it before it is allocated.
  function guard(bytes) {
    let fits;
    try { fits = hostAlloc(bytes); } catch (e) { throw bridgeFailed(); }
    if (!fits) throw new RangeErrorCtor("memory limit exceeded: cannot allocate " + bytes + " bytes");
  }
  function sizeOf(arg, bytesPerElement) {
    if (typeof arg === "number") return arg * bytesPerElement;
    if (arg !== null && typeof arg === "object" && !(arg instanceof ArrayBufferCtor)) {
      const n = arg.length;
      if (typeof n === "number") return n * bytesPerElement;
    }
    return 0;
  }
  const ArrayBufferCtor = ArrayBuffer;
  {
    const Base = ArrayBuffer;
    const Guarded = class ArrayBuffer extends Base {
      constructor(length, options) {
        guard(Math.max(Number(length) || 0, (options && Number(options.maxByteLength)) || 0));
        super(length, options);
      }
    };
    define(G, "ArrayBuffer", { value: Guarded, writable: true, configurable: true });
  }
  for (const name of ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
                      "Int32Array", "Uint32Array", "Float16Array", "Float32Array", "Float64Array",
                      "BigInt64Array", "BigUint64Array"]) {
    const Base = G[name];
    if (typeof Base !== "function") continue;
    const bpe = Base.BYTES_PER_ELEMENT;
    const Guarded = { [name]: class extends Base {
      constructor(...args) {
        guard(sizeOf(args[0], bpe));
        super(...args);
      }
    } }[name];
    define(G, name, { value: Guarded, writable: true, configurable: true });
  }

  function format(v) {
    switch (typeof v) {
      case "string": return v;
      case "undefined": return "undefined";
      case "function": return "[Function " + (v.name || "anonymous") + "]";
      case "bigint": return v + "n";
      case "symbol": return v.toString();
    }
    try {
      if (v instanceof ErrorCtor) return v.name + ": " + v.message;
      const s = stringify(v);
      return s === undefined ? String(v) : s;
    } catch (e) {
      try { return String(v); } catch (e2) { return "[object]"; }
    }
  }

  const console = {};
  const levels = [["log", 0], ["info", 1], ["warn", 2], ["error", 3], ["debug", 4], ["trace", 4]];
  for (const [name, level] of levels) {
    console[name] = { [name](...args) {
      let text = "";
      for (let i = 0; i < args.length; i++) text += (i ? " " : "") + format(args[i]);
      try { hostLog(level, text); } catch (e) { throw bridgeFailed(); }
    } }[name];
  }
  define(G, "console", { value: console, writable: true, configurable: true });

  define(G, "setTimeout", {
    value: function setTimeout(callback, ms, ...args) {
      if (typeof callback !== "function") throw new TypeError("setTimeout: callback must be a function");
      const id = nextTimer++;
      timers.set(id, () => callback(...args));
      try { hostTimer(id, Math.max(0, Number(ms) || 0)); } catch (e) { throw bridgeFailed(); }
      return id;
    },
    writable: true, configurable: true,
  });
  define(G, "clearTimeout", {
    value: function clearTimeout(id) {
      if (timers.delete(id)) {
        try { hostClearTimer(id); } catch (e) { throw bridgeFailed(); }
      }
    },
    writable: true, configurable: true,
  });

  function hostError(name, message, kind) {
    const e = new ErrorCtor(message);
    define(e, "name", { value: name, writable: true, configurable: true });
    if (kind) hostErrors.set(e, kind);
    return e;
  }
  function rejected(name, message, kind) {
    return PromiseCtor.reject(hostError(name, message, kind));
  }

  for (let i = 0; i < toolNames.length; i++) {
    const index = i;
    const fname = "external_" + toolNames[i];
    const fn = { [fname](input) {
      let json;
      try {
        json = stringify(input === undefined ? {} : input);
      } catch (err) {
        return rejected("InvalidArgumentsError",
          fname + ": the argument cannot be serialised as JSON (" + format(err && err.message) + ")", "invalid_args");
      }
      if (typeof json !== "string" || json.charCodeAt(0) !== 123) {
        return rejected("InvalidArgumentsError",
          fname + ": the argument must be a JSON object, got " + format(input), "invalid_args");
      }
      let id;
      try { id = hostCall(index, json); } catch (e) { return PromiseCtor.reject(bridgeFailed()); }
      if (id === 0) {
        return rejected("InvalidArgumentsError",
          fname + ": tool call limit reached (at most " + maxCalls + " calls per execution)", "invalid_args");
      }
      if (id < 0) return new PromiseCtor(() => {});
      return new PromiseCtor((resolve, reject) => { pending.set(id, [resolve, reject]); });
    } }[fname];
    define(G, fname, { value: fn, writable: false, enumerable: true, configurable: false });
  }

  return {
    invoke(fn, withChannel, library, onOk, onError) {
      // The reactions are this realm's functions and the engine's own then: the program
      // never gets hold of the host's callbacks, even if it replaced Promise.prototype.then.
      let channel = withChannel ? function report(text) {
        hostReport(typeof text === "string" ? text : String(text));
      } : undefined;
      if (library !== undefined) channel = library(channel);
      apply(then, fn(channel), [(v) => { onOk(v); }, (e) => { onError(e); }]);
    },
    settle(id, status, payload) {
      const entry = pending.get(id);
      if (entry === undefined) return;
      pending.delete(id);
      const value = parse(payload);
      if (status === 0) entry[0](value);
      else if (status === 2) entry[1](hostError("InvalidArgumentsError", value, "invalid_args"));
      else entry[1](hostError("ToolError", value, "tool"));
    },
    fire(id) {
      const callback = timers.get(id);
      if (callback !== undefined) {
        timers.delete(id);
        callback();
      }
    },
    hostError,
    serialize(value) {
      const s = stringify(value);
      return s === undefined ? "null" : s;
    },
    describe(e) {
      let kind = null, name = "Error", message, stack = null;
      if (e !== null && (typeof e === "object" || typeof e === "function")) {
        kind = hostErrors.get(e) || null;
        try { name = String(e.name === undefined ? "Error" : e.name); } catch (x) { name = "Error"; }
        try {
          message = e instanceof ErrorCtor || "message" in e ? String(e.message) : format(e);
        } catch (x) { message = "[unprintable]"; }
        try { if (typeof e.stack === "string") stack = e.stack; } catch (x) { stack = null; }
      } else {
        message = format(e);
      }
      return stringify({ kind, name, message, stack });
    },
  };
})`;
