// The engine side of the sandbox prelude for V8 isolates (codemode.V8Driver and the Worker of
// codemode.CloudflareDriver): the memory guards V8 needs, the JSON bridge of tool calls, and
// around them the sandbox prelude both engines share (crates/isolate/src/prelude.js, with the
// message table baked in, put in place by the host). It is the body of a function
// of the host functions ($0..$7), which it keeps in this closure, out of the program's reach.
// Every value that leaves it is a string, a number or a boolean; every error the program can
// see is of its own realm, with no frame of the prelude in its stack. It returns the api the
// host enters: configure, invoke, settle, fire, sourceOf.
  "use strict";
  const [hostCallJson, hostLog, hostTimer, hostClearTimer, hostAlloc, hostReport, hostDone, hostFail] =
    [$0, $1, $2, $3, $4, $5, $6, $7];
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
  const mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete;
  const create = Object.create;
  let memBytes = 0;

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

  // The tool call of the shared prelude, over the JSON bridge.
  function toolCall(index, input) {
    const json = stringify(input);
    if (typeof json !== "string" || json.charCodeAt(0) !== 123) return false;
    if (json.length > 2 * DEPTH_MAX && deeperThan(json, DEPTH_MAX)) return DEPTH_MAX;
    const id = hostCallJson(index, json);
    if (id === 0) return null;
    if (id < 0) return new PromiseCtor(() => {}); // the run is over
    return new PromiseCtor((resolve, reject) => { apply(mapSet, pending, [id, [resolve, reject]]); });
  }

  const shared = (__SHARED_PRELUDE__)(toolCall, hostLog, hostTimer, hostClearTimer, hostReport, stackFailure);
  const describe = (e) => hostFail(shared.describe(e));

  function succeed(value) {
    let json;
    try {
      json = shared.serialize(value);
    } catch (err) {
      if (err instanceof RangeErrorCtor && /^(Invalid string length|Maximum call stack)/.test(StringCtor(err.message))) {
        return describe(err);
      }
      return hostFail(failure("result", "ResultError", err));
    }
    hostDone(json);
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
    configure(namesJson, calls, bytes) {
      memBytes = bytes;
      shared.installTools(parse(namesJson), calls);
    },
    invoke(fn, withChannel, library) {
      // The reactions are this realm's functions and the engine's own then: the program
      // never gets hold of them, even if it replaced Promise.prototype.then.
      try {
        let channel = withChannel ? shared.channel : undefined;
        if (library !== undefined) {
          try { channel = library(channel); } catch (e) { return hostFail(failure("library", "InternalError", e)); }
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
    fire(id) {
      try { shared.fire(id); } catch (e) { describe(e); }
    },
    sourceOf: shared.sourceOf,
  };
  return api;
