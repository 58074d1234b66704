// The sandbox prelude of every engine: evaluated in every fresh QuickJS context and every
// fresh V8 isolate, before the program. It installs `console`, timers and one
// `external_<name>` per tool on the global object, and returns the helpers the host needs.
// The host's functions stay in this closure: the program cannot reach them.
//
// The host functions (QuickJS: natives of crates/isolate/src/execution.rs; V8: the adapter
// in python/codemode/v8/host.mjs):
//   hostCall(index, input)  the call's promise; false when the argument is not a JSON object;
//                           a number (the most allowed) when it is nested too deep; null when
//                           the call limit is reached; throws when it cannot be serialised
//   hostLog(level, text)    a console line (0 log, 1 info, 2 warn, 3 error, 4 debug)
//   hostTimer(id, ms), hostClearTimer(id), hostReport(text)
//   hostFailed(error)       what to throw when a host function threw `error` (V8: entering
//                           a host function can run out of stack); undefined: `error` itself
//   hostJson(value)         JSON.stringify(value) as values cross to the host: binary values
//                           as the engine writes them (ArrayBuffer, DataView, Uint8Array and
//                           Uint8ClampedArray as base64, other typed arrays as arrays of numbers);
//                           throws where JSON.stringify throws, and at the memory limit
// Errors this prelude makes for the program are of the program's realm, with a stack that
// starts at the program's own frame. `say` is the table of
// crates/isolate/src/messages.json as functions, baked in before this text is compiled.
(function (hostCall, hostLog, hostTimer, hostClearTimer, hostReport, hostFailed, hostJson) {
  "use strict";
  const say = __MESSAGES__;
  const G = globalThis;
  const stringify = JSON.stringify;
  const apply = Reflect.apply;
  const functionSource = Function.prototype.toString;
  const define = Object.defineProperty;
  const create = Object.create;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const StringCtor = String;
  const PromiseCtor = Promise;
  const reject = Promise.reject;
  const capture = Error.captureStackTrace;
  // The methods of the prelude's own maps, as they were: a program that replaces
  // Map.prototype.get breaks its own maps, not these.
  const mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete;
  const weakGet = WeakMap.prototype.get, weakSet = WeakMap.prototype.set;
  const hostErrors = new WeakMap();
  const timers = new Map();
  let nextTimer = 1;

  // One sandbox, one thread, no host: none of these belong here. A high-resolution clock
  // is no part of the contract either (Date.now() is).
  delete G.SharedArrayBuffer;
  delete G.Atomics;
  delete G.WebAssembly;
  delete G.performance;
  // Stack traces are the engine's own: a program-defined formatter would be handed the
  // functions of every frame on the stack, this prelude's among them.
  define(ErrorCtor, "prepareStackTrace", { value: undefined, writable: false, configurable: false });

  // `e` with a stack that starts at the program's frame that called `fn`.
  function made(e, fn) {
    try { capture(e, fn); } catch (x) {}
    return e;
  }
  function failed(e, fn) {
    return made(hostFailed === undefined ? e : hostFailed(e), fn);
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
      if (v instanceof ErrorCtor) return StringCtor(v.name) + ": " + StringCtor(v.message);
      const s = hostJson(v);
      return s === undefined ? StringCtor(v) : s;
    } catch (e) {
      try { return StringCtor(v); } catch (e2) { return "[object]"; }
    }
  }

  const console = {};
  const levels = [["log", 0], ["info", 1], ["warn", 2], ["error", 3], ["debug", 4], ["trace", 4]];
  for (const [name, level] of levels) {
    const fn = { [name](...args) {
      let text = "";
      for (let i = 0; i < args.length; i++) text += (i ? " " : "") + format(args[i]);
      try { hostLog(level, text); } catch (e) { throw failed(e, fn); }
    } }[name];
    console[name] = fn;
  }
  define(G, "console", { value: console, writable: true, configurable: true });

  define(G, "setTimeout", {
    value: function setTimeout(callback, ms, ...args) {
      if (typeof callback !== "function") throw made(new TypeErrorCtor(say.timer_callback({})), setTimeout);
      const id = nextTimer++;
      apply(mapSet, timers, [id, () => apply(callback, undefined, args)]);
      try { hostTimer(id, Math.max(0, Number(ms) || 0)); } catch (e) { throw failed(e, setTimeout); }
      return id;
    },
    writable: true, configurable: true,
  });
  define(G, "clearTimeout", {
    value: function clearTimeout(id) {
      if (apply(mapDelete, timers, [id])) {
        try { hostClearTimer(id); } catch (e) { throw failed(e, clearTimeout); }
      }
    },
    writable: true, configurable: true,
  });

  // The same few web globals on every engine (QuickJS has its own; V8's bare isolate none).
  if (typeof G.queueMicrotask !== "function") {
    const resolved = PromiseCtor.resolve();
    const then = PromiseCtor.prototype.then;
    define(G, "queueMicrotask", {
      value: function queueMicrotask(callback) {
        if (typeof callback !== "function") throw made(new TypeErrorCtor("queueMicrotask: callback must be a function"), queueMicrotask);
        apply(then, resolved, [() => { callback(); }]);
      },
      writable: true, configurable: true,
    });
  }
  if (typeof G.btoa !== "function" || typeof G.atob !== "function") {
    const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const fromCharCode = StringCtor.fromCharCode;
    const DIGITS = create(null);
    for (let k = 0; k < 64; k++) DIGITS[ALPHABET[k]] = k;
    const invalid = (fn, message) => {
      const e = made(new ErrorCtor(message), fn);
      define(e, "name", { value: "InvalidCharacterError", writable: true, configurable: true });
      return e;
    };
    define(G, "btoa", {
      value: function btoa(data) {
        const s = StringCtor(data);
        let out = "";
        for (let i = 0; i < s.length; i += 3) {
          const a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
          if (a > 255 || b > 255 || c > 255) throw invalid(btoa, "btoa: the string has characters outside Latin-1");
          const n = (a << 16) | ((b || 0) << 8) | (c || 0);
          out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] +
            (i + 1 < s.length ? ALPHABET[(n >> 6) & 63] : "=") + (i + 2 < s.length ? ALPHABET[n & 63] : "=");
        }
        return out;
      },
      writable: true, configurable: true,
    });
    define(G, "atob", {
      value: function atob(data) {
        let s = "";
        const text = StringCtor(data);
        for (let i = 0; i < text.length; i++) {
          const c = text.charCodeAt(i);
          if (c !== 9 && c !== 10 && c !== 12 && c !== 13 && c !== 32) s += text[i];
        }
        let end = s.length;
        if (end % 4 === 0 && s[end - 1] === "=") end -= s[end - 2] === "=" ? 2 : 1;
        if (end % 4 === 1) throw invalid(atob, "atob: the string is not correctly encoded");
        let out = "", bits = 0, value = 0;
        for (let i = 0; i < end; i++) {
          const d = DIGITS[s[i]];
          if (d === undefined) throw invalid(atob, "atob: the string is not correctly encoded");
          value = (value << 6) | d;
          bits += 6;
          if (bits >= 8) { bits -= 8; out += fromCharCode((value >> bits) & 255); }
        }
        return out;
      },
      writable: true, configurable: true,
    });
  }

  // An error the host raises in the program (a tool's failure, refused arguments).
  function hostError(name, message, kind, fn) {
    const e = made(new ErrorCtor(message), fn);
    define(e, "name", { value: name, writable: true, configurable: true });
    apply(weakSet, hostErrors, [e, kind]);
    return e;
  }

  // An Error the host made without a stack (QuickJS): it gets one where the program's await
  // throws it.
  function markHostError(e, name, message, kind) {
    define(e, "message", { value: message, writable: true, configurable: true });
    define(e, "name", { value: name, writable: true, configurable: true });
    apply(weakSet, hostErrors, [e, kind]);
  }

  function refused(fn, message) {
    return apply(reject, PromiseCtor, [hostError("InvalidArgumentsError", message, "invalid_args", fn)]);
  }

  return {
    installTools(toolNames, maxCalls) {
      for (let i = 0; i < toolNames.length; i++) {
        const index = i;
        const tool = "external_" + toolNames[i];
        const fn = { [tool](input) {
          let promise;
          try {
            promise = hostCall(index, input === undefined ? {} : input);
          } catch (err) {
            let cause;
            try { cause = format(err && err.message); } catch (x) { cause = "?"; }
            return refused(fn, say.args_not_json({ tool, cause }));
          }
          if (promise === false) return refused(fn, say.args_not_object({ tool, got: format(input) }));
          if (typeof promise === "number") return refused(fn, say.args_too_deep({ tool, max: promise }));
          if (promise === null) return refused(fn, say.call_limit({ tool, max: maxCalls }));
          return promise;
        } }[tool];
        define(G, tool, { value: fn, writable: false, enumerable: true, configurable: false });
      }
    },
    // Run timer `id`'s callback (what it throws goes to the host).
    fire(id) {
      const callback = apply(mapGet, timers, [id]);
      if (callback !== undefined) {
        apply(mapDelete, timers, [id]);
        callback();
      }
    },
    hostError,
    markHostError,
    // The source text of a function the engine parsed (read with the built-in
    // Function.prototype.toString as this prelude found it); null for anything else.
    sourceOf(f) {
      if (typeof f !== "function") return null;
      try { return apply(functionSource, f, []); } catch (e) { return null; }
    },
    // The report channel (handed to the program's function only when the host opens it).
    channel: function report(text) {
      hostReport(typeof text === "string" ? text : StringCtor(text));
    },
    // A thrown value as JSON: {kind (a host error's) or null, name, message, stack or null}.
    describe(e) {
      let kind = null, name = "Error", message, stack = null;
      if (e !== null && (typeof e === "object" || typeof e === "function")) {
        kind = apply(weakGet, hostErrors, [e]) || null;
        try { name = StringCtor(e.name === undefined ? "Error" : e.name); } catch (x) { name = "Error"; }
        try {
          message = e instanceof ErrorCtor || "message" in e ? StringCtor(e.message) : format(e);
        } catch (x) { message = say.unprintable({}); }
        try { if (typeof e.stack === "string") stack = e.stack; } catch (x) { stack = null; }
      } else {
        message = format(e);
      }
      // A plain object would take an `Object.prototype.toJSON` the program planted.
      const description = create(null);
      description.kind = kind;
      description.name = name;
      description.message = message;
      description.stack = stack;
      return stringify(description);
    },
  };
})
