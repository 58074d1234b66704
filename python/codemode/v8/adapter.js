// The engine side of the sandbox prelude for V8 isolates (codemode.V8Driver and the Worker of
// codemode.CloudflareDriver): the memory guards V8 needs, the JSON bridge of tool calls, and
// around them the sandbox prelude both engines share (crates/isolate/src/prelude.js, with the
// message table baked in, put in place by the host). It is the body of a function
// of the host functions ($0..$8), which it keeps in this closure, out of the program's reach.
// Every value that leaves it is a string, a number or a boolean; every error the program can
// see is of its own realm, with no frame of the prelude in its stack. It returns the api the
// host enters: configure, invoke, settle, settleCheck, fire, sourceOf. Binary values cross as QuickJS
// writes them (vendor/rquickjs-sys, `js_json_binary`): the bytes of an ArrayBuffer, DataView,
// Uint8Array or Uint8ClampedArray as base64, any other typed array as an array of numbers.
  "use strict";
  const [hostCallJson, hostLog, hostTimer, hostClearTimer, hostAlloc, hostReport, hostDone, hostFail,
    hostCheckJson] = [$0, $1, $2, $3, $4, $5, $6, $7, $8];
  const G = globalThis;
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const define = Object.defineProperty;
  const PromiseCtor = Promise;
  const then = Promise.prototype.then;
  const apply = Reflect.apply;
  const RangeErrorCtor = RangeError;
  const TypeErrorCtor = TypeError;
  const capture = Error.captureStackTrace;
  const StringCtor = String;
  const pending = new Map();
  const checks = new Map(); // the resolve function of each check the host has not answered
  const mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete;
  const create = Object.create;
  let memBytes = 0;
  let maxResult = Infinity;
  // Whether the program has made a binary value (every guarded constructor and buffer
  // method says so): until it has, none can be met, and JSON.stringify alone writes the JSON.
  let binaryMade = false;

  function made(e, fn) {
    try { capture(e, fn); } catch (x) {}
    return e;
  }
  // A host function failed: the stack ran out on entering it. The error is this realm's.
  const stackFailure = () => new RangeErrorCtor("Maximum call stack size exceeded");

  // Memory the heap limit does not see until it is used: counted before it is allocated.
  // Resizable buffers: the engine counts none of their memory, so their maximum is counted
  // here from the start (until they are collected).
  let reserved = 0;
  const reservations = typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry((n) => { reserved -= n; }) : null;
  function reserve(buffer, n) {
    if (!(n > 0) || !buffer || !buffer.resizable) return buffer;
    reserved += n;
    if (reservations !== null) reservations.register(buffer, n);
    return buffer;
  }
  function guard(bytes, fn) {
    let fits;
    try { fits = hostAlloc(bytes + reserved); } catch (e) { throw made(stackFailure(), fn); }
    if (!fits) throw made(new RangeErrorCtor("memory limit exceeded: cannot allocate " + bytes + " bytes"), fn);
  }
  // A guarded constructor takes the place of the engine's own everywhere it can be reached
  // (the global, prototype.constructor, and as the prototype of nothing), so that no route
  // leads to an unguarded one.
  function replaceConstructor(Base, size, parent, made_) {
    const name = Base.name;
    const Guarded = function (...args) {
      if (new.target === undefined) throw made(new TypeErrorCtor("Constructor " + name + " requires 'new'"), Guarded);
      const n = size(args);
      guard(n, Guarded);
      binaryMade = true;
      const object = Reflect.construct(Base, args, new.target === Guarded ? Base : new.target);
      return made_ ? made_(object, n) : object;
    };
    define(Guarded, "name", { value: name });
    define(Guarded, "length", { value: Base.length });
    define(Guarded, "prototype", { value: Base.prototype, writable: false, enumerable: false, configurable: false });
    Object.setPrototypeOf(Guarded, parent);
    for (const key of Reflect.ownKeys(Base)) {
      if (key === "prototype" || key === "name" || key === "length") continue;
      define(Guarded, key, Object.getOwnPropertyDescriptor(Base, key));
    }
    define(Base.prototype, "constructor", { value: Guarded, writable: true, enumerable: false, configurable: true });
    define(G, name, { value: Guarded, writable: true, enumerable: false, configurable: true });
    return Guarded;
  }
  const ArrayBufferCtor = ArrayBuffer;
  const Uint8ArrayBase = Uint8Array; // views of bytes to read, which allocate nothing
  replaceConstructor(ArrayBuffer,
    (args) => Math.max(Number(args[0]) || 0, (args[1] && Number(args[1].maxByteLength)) || 0),
    Function.prototype, reserve);
  {
    // On the shared prototype: every buffer, whichever way it was made, is guarded.
    const proto = ArrayBufferCtor.prototype;
    for (const name of ["resize", "transfer", "transferToFixedLength", "slice"]) {
      const original = proto[name];
      if (typeof original !== "function") continue;
      const method = { [name](...args) {
        if (name === "resize") return apply(original, this, args); // within its reserved maximum
        const n = name === "slice" ? Math.abs(Number(args[1] ?? this.byteLength) - Number(args[0] || 0))
          : Math.max(Number(args[0] ?? this.byteLength) || 0, (name === "transfer" && this.resizable) ? this.maxByteLength : 0);
        guard(n || 0, method);
        binaryMade = true;
        const result = apply(original, this, args);
        return name === "transfer" ? reserve(result, result.maxByteLength) : result;
      } }[name];
      define(proto, name, { value: method, writable: true, configurable: true });
    }
  }
  function sizeOf(arg, bytesPerElement) {
    if (typeof arg === "number") return arg * bytesPerElement;
    if (arg !== null && typeof arg === "object" && !(arg instanceof ArrayBufferCtor)) {
      let n = 0;
      try { n = arg.length; } catch (e) {}
      if (typeof n === "number") return n * bytesPerElement;
    }
    return 0;
  }
  const TypedArray = Object.getPrototypeOf(Int8Array);
  for (const name of ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array",
                      "Int32Array", "Uint32Array", "Float16Array", "Float32Array", "Float64Array",
                      "BigInt64Array", "BigUint64Array"]) {
    const Base = G[name];
    if (typeof Base !== "function") continue;
    const bpe = Base.BYTES_PER_ELEMENT;
    replaceConstructor(Base, (args) => sizeOf(args[0], bpe), TypedArray);
  }
  // Where the engine has them (workerd), Uint8Array's factories from text make arrays without
  // a constructor: counted and noted the same way.
  for (const [name, perChar] of [["fromBase64", 0.75], ["fromHex", 0.5]]) {
    const original = Uint8ArrayBase[name];
    if (typeof original !== "function") continue;
    const method = { [name](...args) {
      let n = 0;
      try { n = StringCtor(args[0]).length * perChar; } catch (e) {}
      guard(n, method);
      binaryMade = true;
      return apply(original, this, args);
    } }[name];
    define(G.Uint8Array, name, { value: method, writable: true, configurable: true });
  }
  // Strings made of repetition are not in the heap until read: count them when made.
  for (const name of ["repeat", "padStart", "padEnd"]) {
    const original = StringCtor.prototype[name];
    const method = { [name](...args) {
      const self = StringCtor(this);
      const size = name === "repeat" ? self.length * Number(args[0]) : Number(args[0]);
      if (size > memBytes) guard(size, method);
      return apply(original, self, args);
    } }[name];
    define(StringCtor.prototype, name, { value: method, writable: true, configurable: true });
  }

  // The JSON text of a tool argument is nested at most this deep (as on QuickJS).
  const DEPTH_MAX = 1000;
  function deeperThan(json, max) {
    let depth = 0, inString = false;
    for (let i = 0; i < json.length; i++) {
      const c = json.charCodeAt(i);
      if (inString) {
        if (c === 92) i++;
        else if (c === 34) inString = false;
      } else if (c === 34) inString = true;
      else if (c === 123 || c === 91) { if (++depth > max) return true; }
      else if (c === 125 || c === 93) depth--;
    }
    return false;
  }

  // -- binary values in the JSON for the host ---------------------------------------------
  const isView = ArrayBufferCtor.isView;
  const construct = Reflect.construct;
  const isPrototypeOf = Object.prototype.isPrototypeOf;
  const fromCharCode = StringCtor.fromCharCode;
  const getter = (proto, key) => Object.getOwnPropertyDescriptor(proto, key).get;
  const viewKind = getter(TypedArray.prototype, Symbol.toStringTag); // undefined: a DataView
  const viewBuffer = getter(TypedArray.prototype, "buffer");
  const viewOffset = getter(TypedArray.prototype, "byteOffset");
  const viewBytes = getter(TypedArray.prototype, "byteLength"); // 0 when detached or out of bounds
  const viewLength = getter(TypedArray.prototype, "length");
  const dataViewBuffer = getter(DataView.prototype, "buffer");
  const dataViewOffset = getter(DataView.prototype, "byteOffset");
  const dataViewBytes = getter(DataView.prototype, "byteLength"); // throws when detached
  const bufferBytes = getter(ArrayBufferCtor.prototype, "byteLength"); // throws for other objects
  const toBase64 = Uint8ArrayBase.prototype.toBase64; // the engine's own, where it has one
  const DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const CODES = [];
  for (let k = 0; k < 64; k++) CODES[k] = DIGITS.charCodeAt(k);
  const PIECE = 3 * 512; // bytes made into characters at a time (fromCharCode's arguments)

  function base64(bytes, n) {
    if (typeof toBase64 === "function") return apply(toBase64, bytes, []);
    let out = "";
    const codes = [];
    for (let i = 0; i < n; i += PIECE) {
      const end = i + PIECE < n ? i + PIECE : n;
      let k = 0, j = i;
      for (; j + 2 < end; j += 3) {
        const x = (bytes[j] << 16) | (bytes[j + 1] << 8) | bytes[j + 2];
        codes[k++] = CODES[x >> 18]; codes[k++] = CODES[(x >> 12) & 63];
        codes[k++] = CODES[(x >> 6) & 63]; codes[k++] = CODES[x & 63];
      }
      if (j < end) { // the last one or two bytes (a piece is a multiple of 3)
        const two = j + 1 < end;
        const x = (bytes[j] << 16) | (two ? bytes[j + 1] << 8 : 0);
        codes[k++] = CODES[x >> 18]; codes[k++] = CODES[(x >> 12) & 63];
        codes[k++] = two ? CODES[(x >> 6) & 63] : 61; codes[k++] = 61;
      }
      codes.length = k;
      out += apply(fromCharCode, null, codes);
    }
    return out;
  }

  // Base64 characters the JSON being written may still take before it is certainly over the
  // result's limit (Infinity for other JSON), and those left out past it ("" stands for
  // them, as on QuickJS), so that the result's whole size is still known.
  let room = Infinity, over = 0, lastOver = 0;
  function bytesText(buffer, offset, length) {
    if (!(length > 0)) return "";
    const size = ((length - length % 3) / 3 + (length % 3 === 0 ? 0 : 1)) * 4;
    if (size + 2 > room) {
      over += size;
      return "";
    }
    guard(size, outgoingJSON);
    room -= size + 2;
    return base64(construct(Uint8ArrayBase, [buffer, offset, length]), length);
  }
  function binaryValue(v) {
    if (isView(v)) {
      const kind = apply(viewKind, v, []);
      if (kind === undefined) {
        let length = 0, offset = 0, buffer;
        try {
          length = apply(dataViewBytes, v, []);
          offset = apply(dataViewOffset, v, []);
          buffer = apply(dataViewBuffer, v, []);
        } catch (e) { length = 0; }
        return bytesText(buffer, offset, length);
      }
      if (kind === "Uint8Array" || kind === "Uint8ClampedArray") {
        return bytesText(apply(viewBuffer, v, []), apply(viewOffset, v, []), apply(viewBytes, v, []));
      }
      const n = apply(viewBytes, v, []) === 0 ? 0 : apply(viewLength, v, []);
      const numbers = [];
      for (let i = 0; i < n; i++) numbers[i] = v[i];
      return numbers;
    }
    if (apply(isPrototypeOf, ArrayBufferCtor.prototype, [v])) {
      let length;
      try { length = apply(bufferBytes, v, []); } catch (e) { return v; }
      return bytesText(v, 0, length);
    }
    return v;
  }
  function replacer(key, v) {
    return typeof v === "object" && v !== null ? binaryValue(v) : v;
  }
  // JSON.stringify(value) as it crosses to the host; `limit`: the result's size limit, or
  // Infinity. The base64 it left out is in `lastOver`.
  function outgoingJSON(value, limit) {
    if (!binaryMade) {
      lastOver = 0;
      return stringify(value);
    }
    // A toJSON or getter may log or call a tool while this runs: each JSON keeps its own count.
    const savedRoom = room, savedOver = over;
    room = limit;
    over = 0;
    try {
      return stringify(value, replacer);
    } finally {
      lastOver = over;
      room = savedRoom;
      over = savedOver;
    }
  }

  // The tool call of the shared prelude, over the JSON bridge.
  function toolCall(index, input) {
    const json = outgoingJSON(input, Infinity);
    if (typeof json !== "string" || json.charCodeAt(0) !== 123) return false;
    if (json.length > 2 * DEPTH_MAX && deeperThan(json, DEPTH_MAX)) return DEPTH_MAX;
    const id = hostCallJson(index, json);
    if (id === 0) return null;
    if (id < 0) return new PromiseCtor(() => {}); // the run is over
    return new PromiseCtor((resolve, reject) => { apply(mapSet, pending, [id, [resolve, reject]]); });
  }

  // `check(i, value)` of a host library: a promise of null when `value` (as its JSON crosses
  // to the host) is valid by the execution's i-th schema, else of [path, message]. The host
  // answers with the one validator of codemode (no tool call: no limit, no event).
  const CHECK_DEPTH_MAX = 128;
  function check(index, value) {
    let json = outgoingJSON(value, Infinity);
    if (typeof json !== "string") json = "null";
    if (json.length > 2 * CHECK_DEPTH_MAX && deeperThan(json, CHECK_DEPTH_MAX)) {
      return PromiseCtor.resolve(["", "is nested deeper than " + CHECK_DEPTH_MAX + " levels"]);
    }
    const id = hostCheckJson(index | 0, json);
    if (id < 0) return new PromiseCtor(() => {}); // the run is over
    return new PromiseCtor((resolve) => { apply(mapSet, checks, [id, resolve]); });
  }

  const shared = (__SHARED_PRELUDE__)(toolCall, hostLog, hostTimer, hostClearTimer, hostReport, stackFailure,
    (value) => outgoingJSON(value, Infinity));
  const describe = (e) => hostFail(shared.describe(e));

  function succeed(value) {
    let json;
    try {
      json = outgoingJSON(value, maxResult);
      if (json === undefined) json = "null";
    } catch (err) {
      if (err instanceof RangeErrorCtor && /^(Invalid string length|Maximum call stack|memory limit exceeded)/.test(StringCtor(err.message))) {
        return describe(err);
      }
      return hostFail(failure("result", "ResultError", err));
    }
    hostDone(json, lastOver);
  }

  // A failure the host words (kind "result": the result's; "library": the host library's),
  // with the cause as "name: message". A null-prototype object: a plain one would take an
  // Object.prototype.toJSON.
  function failure(kind, name, err) {
    let cause;
    try { cause = StringCtor(err.name) + ": " + StringCtor(err.message); } catch (x) { cause = "Error"; }
    const description = create(null);
    description.kind = kind;
    description.name = name;
    description.message = cause;
    return stringify(description);
  }

  const api = {
    configure(namesJson, calls, bytes, resultBytes) {
      memBytes = bytes;
      if (resultBytes >= 0) maxResult = resultBytes;
      shared.installTools(parse(namesJson), calls);
    },
    invoke(fn, withChannel, library) {
      // The reactions are this realm's functions and the engine's own then: the program
      // never gets hold of them, even if it replaced Promise.prototype.then.
      try {
        let channel = withChannel ? shared.channel : undefined;
        if (library !== undefined) {
          try { channel = library(channel, check); } catch (e) { return hostFail(failure("library", "InternalError", e)); }
        }
        apply(then, fn(channel), [succeed, describe]);
      } catch (e) {
        describe(e);
      }
    },
    settle(id, status, payload) {
      const entry = apply(mapGet, pending, [id]);
      if (entry === undefined) return;
      apply(mapDelete, pending, [id]);
      try {
        const value = parse(payload);
        if (status === 0) entry[0](value);
        else if (status === 2) entry[1](shared.hostError("InvalidArgumentsError", value, "invalid_args", api.settle));
        else entry[1](shared.hostError("ToolError", value, "tool", api.settle));
      } catch (e) {
        describe(e);
      }
    },
    settleCheck(id, payload) {
      const resolve = apply(mapGet, checks, [id]);
      if (resolve === undefined) return;
      apply(mapDelete, checks, [id]);
      try { resolve(parse(payload)); } catch (e) { describe(e); }
    },
    fire(id) {
      try { shared.fire(id); } catch (e) { describe(e); }
    },
    sourceOf: shared.sourceOf,
  };
  return api;
