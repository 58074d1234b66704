// The sandbox of codemode's Cloudflare Worker: the main module of the dynamic Worker that runs
// one execution, in an isolate of its own with no network (globalOutbound: null) and no
// bindings. worker.js loads it with the program as a second module ("program.ts") and, when
// the run has one, the host library as a third ("library.js"), and calls `run(spec, host)`.
//
// It plays the part host.mjs plays for codemode.V8Driver, inside the program's own isolate:
// the V8 side of the sandbox prelude (adapter.js, with the shared prelude) gets its host
// functions from here, and every message goes to worker.js as the lines of the V8 engine's
// protocol (host.send(lines): c, k, l, r, o, f; host.next() answers with S and K lines). This module is
// the program's side of the boundary: worker.js checks every line again and enforces the
// limits itself, so a program that subverts it fools only its own run.
//
// The message table and the adapter are put in place by codemode.cloudflare.bundle.

import { WorkerEntrypoint } from "cloudflare:workers";

const MESSAGES = __MESSAGES__;
const say = (key, values = {}) =>
  MESSAGES[key].replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));

// Taken before the program's module is evaluated: it may replace any global afterwards.
const stringify = JSON.stringify;
const parse = JSON.parse;
const StringCtor = String;
const NumberCtor = Number;
const MapCtor = Map;
const apply = Reflect.apply;
const mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete;
const mapValues = Map.prototype.values, mapClear = Map.prototype.clear;
const arrayPush = Array.prototype.push;
const setTimeoutFn = setTimeout, clearTimeoutFn = clearTimeout;
const dateNow = Date.now; // a program may replace Date (a replay does)
const queueMicrotaskFn = queueMicrotask;
const encoder = new TextEncoder();
const encode = TextEncoder.prototype.encode;
const utf8Length = (text) => apply(encode, encoder, [text]).length;
const regexpTest = RegExp.prototype.test;
const strReplace = String.prototype.replace;
const strSlice = String.prototype.slice;
const strIndexOf = String.prototype.indexOf;
const strIncludes = String.prototype.includes;

// The program module (made by worker.js) is spec.prefix + code + a suffix, and exports the
// function whose body the program is, exactly as on the other engines (the one parameter is
// the report channel).
const WRAP_PREFIX = "(async function (__codemode_channel) {";
const WRAP_SUFFIX = "\n})";
const REPORT_BYTES_MAX = 16 << 20;
const BATCH_BYTES = 8 << 20;
const LINE_MAX = 24 << 20; // the longest line an RPC message can carry here, with room to spare
const LONE_SURROGATE = /\\(?:\\|u(d[89a-f][0-9a-f]{2}))/g;
const wellFormed = (match, hex) => (hex === undefined ? match : "\\ufffd");

// The globals of a bare V8 isolate (ECMAScript's own): the Worker's others (fetch, crypto,
// caches, navigator, scheduler...) go, as the program sees the same globals on every engine;
// the prelude then adds its own (console, timers, atob/btoa, queueMicrotask).
const ECMASCRIPT = new Set([
  "AggregateError", "Array", "ArrayBuffer", "AsyncDisposableStack", "BigInt", "BigInt64Array",
  "BigUint64Array", "Boolean", "DataView", "Date", "DisposableStack", "Error", "EvalError",
  "FinalizationRegistry", "Float16Array", "Float32Array", "Float64Array", "Function", "Infinity",
  "Int16Array", "Int32Array", "Int8Array", "Intl", "Iterator", "JSON", "Map", "Math", "NaN", "Number",
  "Object", "Promise", "Proxy", "RangeError", "ReferenceError", "Reflect", "RegExp", "Set", "String",
  "SuppressedError", "Symbol", "SyntaxError", "TypeError", "URIError", "Uint16Array", "Uint32Array",
  "Uint8Array", "Uint8ClampedArray", "WeakMap", "WeakRef", "WeakSet", "decodeURI",
  "decodeURIComponent", "encodeURI", "encodeURIComponent", "escape", "eval", "globalThis", "isFinite",
  "isNaN", "parseFloat", "parseInt", "undefined", "unescape",
]);

function bareGlobal() {
  try {
    Object.setPrototypeOf(globalThis, Object.prototype);
  } catch {}
  for (const name of Reflect.ownKeys(globalThis)) {
    if (typeof name === "string" && ECMASCRIPT.has(name)) continue;
    try {
      delete globalThis[name];
    } catch {}
  }
}

// The V8 side of the sandbox prelude (adapter.js), a function of the host functions.
const SETUP = function ($0, $1, $2, $3, $4, $5, $6, $7, $8) {
__ADAPTER__
};

class Execution {
  constructor(spec, host) {
    this.spec = spec;
    this.host = host;
    this.live = false; // the host functions answer once the program is checked
    this.finished = false;
    this.calls = 0;
    this.checks = 0;
    this.pendingCalls = 0;
    this.timers = new MapCtor();
    this.logLines = 0;
    this.logBytes = 0;
    this.logCut = false;
    this.reportBytes = 0;
    this.memoryExceeded = false;
    this.out = [];
    this.flushing = false;
    this.checking = false;
    this.sent = Promise.resolve(); // the last lines handed over
    this.memBytes = Math.max(1, NumberCtor(spec.memoryMib) || 128) * 1024 * 1024;
    this.memoryMessage = say("memory", { mib: Math.max(1, NumberCtor(spec.memoryMib) || 128) });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  send(line) {
    if (apply(strIncludes, line, ["\\ud"])) line = apply(strReplace, line, [LONE_SURROGATE, wellFormed]);
    apply(arrayPush, this.out, [line]);
    // Out as soon as the code running now has made its lines (all the calls of one loop in
    // one message), not after the program's microtasks: a tool call must not wait for them.
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotaskFn(() => {
        this.flushing = false;
        this.flush();
      });
    }
  }

  // Hand the lines made since the last time to worker.js (calls on one stub arrive in order).
  flush() {
    const out = this.out;
    this.out = [];
    // One call carries at most BATCH_BYTES (the runtime caps the size of an RPC message).
    for (let i = 0; i < out.length; ) {
      const lines = [];
      let size = 0;
      do {
        size += out[i].length;
        apply(arrayPush, lines, [out[i++]]);
      } while (i < out.length && size + out[i].length <= BATCH_BYTES);
      this.sent = this.host.send(lines).catch(() => this.stop());
    }
    return this.sent;
  }

  async run() {
    const spec = this.spec;
    bareGlobal();
    const api = SETUP(
      (index, json) => (this.live ? this.hostCall(index, json) : -1),
      (level, text) => this.live && (this.finished ? this.over() : this.hostLog(level, text)),
      (id, ms) => this.live && this.hostTimer(id, ms),
      (id) => this.hostClearTimer(id),
      (bytes) => this.hostAlloc(bytes),
      (text) => this.live && this.hostReport(text),
      (json, over) => this.live && this.hostDone(json, over),
      (description) => this.live && this.hostFail(description),
      (index, json) => (this.live ? this.hostCheck(index, json) : -1),
    );
    this.api = api;
    let program, library;
    try {
      api.configure(stringify(spec.names), spec.maxCalls, this.memBytes, spec.maxResult);
      program = (await import("./program.ts")).default;
      if (api.sourceOf(program) !== apply(strSlice, WRAP_PREFIX + spec.code + WRAP_SUFFIX, [1, -1])) {
        this.finish("syntax", "SyntaxError", say("not_one_body"), []);
        this.end();
        return this.done;
      }
    } catch (err) {
      if (err && err.name === "SyntaxError") this.finishSyntax(err);
      else this.finish("syntax", "SyntaxError", say("not_one_body"), []);
      this.end();
      return this.done;
    }
    if (typeof spec.library === "string") {
      try {
        library = (await import("./library.js")).default;
      } catch (err) {
        const cause = `${err && err.name}: ${err && err.message}`;
        this.finish("runtime", "InternalError", say("library_failed", { cause }), []);
        this.end();
        return this.done;
      }
    }
    this.live = true;
    this.listen();
    this.enter(() => api.invoke(program, spec.channel === true, library));
    return this.done;
  }

  // Tool results from worker.js, until the run is over.
  async listen() {
    while (!this.finished) {
      let lines;
      try {
        lines = await this.host.next();
      } catch {
        return this.stop();
      }
      if (lines === null || this.finished) return this.stop();
      for (const line of lines) {
        if (this.finished) break;
        const kind = line.charCodeAt(0);
        if (kind === 75 /* K */) {
          const at = apply(strIndexOf, line, [" ", 2]);
          const checkId = NumberCtor(apply(strSlice, line, [2, at]));
          const answer = apply(strSlice, line, [at + 1]);
          this.pendingCalls--;
          this.enter(() => this.api.settleCheck(checkId, answer));
          continue;
        }
        if (kind !== 83 /* S */) continue;
        const a = apply(strIndexOf, line, [" ", 2]);
        const b = apply(strIndexOf, line, [" ", a + 1]);
        const callId = NumberCtor(apply(strSlice, line, [2, a]));
        const status = NumberCtor(apply(strSlice, line, [a + 1, b]));
        const payload = apply(strSlice, line, [b + 1]);
        this.pendingCalls--;
        this.enter(() => this.api.settle(callId, status, payload));
      }
    }
  }

  // Run the program for one event; once its microtasks have run, check that something can
  // still settle what it awaits, and send what it made.
  enter(fn) {
    if (this.finished) return;
    try {
      fn();
    } catch (err) {
      this.engineFailed(err);
    }
    // One check for the events of one turn (a step's results arrive together).
    if (!this.checking) {
      this.checking = true;
      setTimeoutFn(() => {
        this.checking = false;
        this.afterEvent();
      }, 0);
    }
  }

  afterEvent() {
    if (!this.finished) {
      if (this.memoryExceeded) this.finish("memory", "MemoryError", this.memoryMessage, []);
      else if (this.pendingCalls === 0 && this.timers.size === 0) {
        this.finish("runtime", "DeadlockError", say("deadlock"), []);
      }
    }
    this.flush();
  }

  engineFailed(err) {
    if (this.finished) return;
    const message = StringCtor((err && err.message) || err);
    if (this.memoryExceeded || apply(regexpTest, /memory limit/, [message])) {
      return this.finish("memory", "MemoryError", this.memoryMessage, []);
    }
    this.finish("internal", "InternalError", say("engine_stopped"), []);
  }

  // The run is over but the program goes on (it cannot be stopped from here): what it does
  // next throws, so that a loop of console lines ends and the outcome can leave.
  over() {
    throw new Error(say("engine_stopped"));
  }

  // A host library's check of a value: not a tool call (no limit counts it; ids of its own).
  hostCheck(index, json) {
    if (this.finished) return -1;
    if (json.length > this.memBytes || json.length > LINE_MAX) {
      this.memoryExceeded = true;
      return -1;
    }
    this.checks++;
    this.pendingCalls++;
    this.send("k " + this.checks + " " + (index | 0) + " " + json);
    return this.checks;
  }

  hostCall(index, json) {
    if (this.finished) return -1;
    if (json.length > this.memBytes || json.length > LINE_MAX) {
      // An argument larger than the memory the run may use (or than a message may carry).
      this.memoryExceeded = true;
      return -1;
    }
    if (this.calls >= this.spec.maxCalls) return 0;
    this.calls++;
    this.pendingCalls++;
    this.send("c " + this.calls + " " + (index | 0) + " " + json);
    return this.calls;
  }

  hostReport(text) {
    if (this.finished) return;
    text = typeof text === "string" ? text : "";
    this.reportBytes += text.length;
    if (this.reportBytes > REPORT_BYTES_MAX) return;
    this.send("r " + dateNow() + " " + stringify(text));
  }

  hostLog(level, text) {
    if (this.finished || this.logCut) return;
    text = typeof text === "string" ? text : "";
    level = level | 0;
    const prefix = ["", "INFO: ", "WARN: ", "ERROR: ", "DEBUG: "][level] ?? "";
    const spec = this.spec;
    const size = utf8Length(text) + prefix.length;
    if (this.logLines + 1 > spec.maxLogLines || this.logBytes + size > spec.maxLogBytes) {
      this.logCut = true;
      if (spec.failLog) {
        const limits = { lines: spec.maxLogLines, bytes: spec.maxLogBytes };
        this.finish("output_limit", "OutputLimitError", say("log_limit", limits), []);
      } else {
        const marker = say("log_truncated", { lines: spec.maxLogLines, bytes: spec.maxLogBytes });
        this.send("l 2 " + dateNow() + " " + stringify(marker));
      }
      return;
    }
    this.logLines++;
    this.logBytes += size;
    this.send("l " + level + " " + dateNow() + " " + stringify(prefix + text));
  }

  hostTimer(id, ms) {
    if (this.finished) return;
    const delay = Math.min(Math.max(0, NumberCtor(ms) || 0), 2 ** 31 - 1);
    const handle = setTimeoutFn(() => {
      apply(mapDelete, this.timers, [id]);
      this.enter(() => this.api.fire(id));
    }, delay);
    apply(mapSet, this.timers, [id, handle]);
  }

  hostClearTimer(id) {
    const handle = apply(mapGet, this.timers, [id]);
    if (handle !== undefined) {
      clearTimeoutFn(handle);
      apply(mapDelete, this.timers, [id]);
    }
  }

  // The Worker has no heap statistics to look at: what one allocation may take is checked
  // here, and Cloudflare's own cap on the isolate holds the rest.
  hostAlloc(bytes) {
    if (!(bytes >= 0)) return true;
    const fits = bytes <= this.memBytes;
    if (!fits) this.memoryExceeded = true;
    return fits;
  }

  // over: base64 the adapter left out of `json` past the result's limit (its length).
  hostDone(json, over) {
    if (this.finished) return;
    if (this.memoryExceeded) return this.finish("memory", "MemoryError", this.memoryMessage, []);
    const bytes = utf8Length(json) + (NumberCtor(over) || 0);
    if (bytes > this.spec.maxResult) {
      return this.finish("result", "ResultError", say("result_too_large", { bytes, max: this.spec.maxResult }), []);
    }
    this.end("o " + json);
  }

  // The error is described to worker.js as it is (kind, name, message, stack), which words it
  // and finds its frames out of the program's reach: "F <memory exceeded 0|1> <description>".
  hostFail(description) {
    if (this.finished) return;
    this.end("F " + (this.memoryExceeded ? 1 : 0) + " " + StringCtor(description));
  }

  finishSyntax(err) {
    let message = "invalid program";
    let stack = null;
    try {
      message = StringCtor(err.message);
      stack = StringCtor(err.stack);
    } catch {}
    this.end("F 0 " + stringify({ kind: "syntax", name: "SyntaxError", message, stack }));
  }

  finish(kind, name, message, frames) {
    this.end("f " + stringify([kind, name, message, frames]));
  }

  // Send the outcome; whatever the program left running is dropped with the isolate.
  end(line) {
    if (this.finished) return;
    this.finished = true;
    for (const handle of apply(mapValues, this.timers, [])) clearTimeoutFn(handle);
    apply(mapClear, this.timers, []);
    if (line !== undefined) this.send(line);
    // The run's return does not wait for calls on the host's stub: resolve once they arrived.
    this.flush().then(this.resolveDone, this.resolveDone);
  }

  // worker.js went away: nothing more to say.
  stop() {
    this.finished = true;
    this.out = [];
    this.resolveDone();
  }
}

export default class Sandbox extends WorkerEntrypoint {
  // One execution; resolves when its outcome has been handed to worker.js.
  async run(spec, host) {
    return new Execution(spec, host).run();
  }
}
