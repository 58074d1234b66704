// The sandbox prelude: evaluated once in every fresh context, before the program.
// It receives the host's native functions, installs `console`, timers and one
// `external_<name>` per tool on the global object, and returns the helpers the
// host needs. The native functions stay in this closure: the program cannot reach them.
(function (hostCall, hostLog, hostTimer, hostClearTimer, hostReport) {
  "use strict";
  const G = globalThis;
  const stringify = JSON.stringify;
  const apply = Reflect.apply;
  const functionSource = Function.prototype.toString;
  const isFunction = (v) => typeof v === "function";
  const define = Object.defineProperty;
  const create = Object.create;
  const hostErrors = new WeakMap();
  const timers = new Map();
  // One sandbox, one thread: shared memory has no use here and no other engine offers it.
  delete G.SharedArrayBuffer;
  delete G.Atomics;
  let nextTimer = 1;

  function format(v) {
    switch (typeof v) {
      case "string": return v;
      case "undefined": return "undefined";
      case "function": return "[Function " + (v.name || "anonymous") + "]";
      case "bigint": return v + "n";
      case "symbol": return v.toString();
    }
    try {
      if (v instanceof Error) return v.name + ": " + v.message;
      const s = stringify(v);
      return s === undefined ? String(v) : s;
    } catch (e) {
      try { return String(v); } catch (e2) { return "[object]"; }
    }
  }

  const console = {};
  const levels = [["log", 0], ["info", 1], ["warn", 2], ["error", 3], ["debug", 4], ["trace", 4]];
  for (const [name, level] of levels) {
    console[name] = function (...args) {
      let text = "";
      for (let i = 0; i < args.length; i++) text += (i ? " " : "") + format(args[i]);
      hostLog(level, text);
    };
  }
  define(G, "console", { value: console, writable: true, configurable: true });

  define(G, "setTimeout", {
    value: function setTimeout(callback, ms, ...args) {
      if (typeof callback !== "function") throw new TypeError("setTimeout: callback must be a function");
      const id = nextTimer++;
      timers.set(id, () => callback(...args));
      hostTimer(id, Math.max(0, Number(ms) || 0));
      return id;
    },
    writable: true, configurable: true,
  });
  define(G, "clearTimeout", {
    value: function clearTimeout(id) {
      if (timers.delete(id)) hostClearTimer(id);
    },
    writable: true, configurable: true,
  });

  function hostError(name, message, kind) {
    const e = new Error(message);
    define(e, "name", { value: name, writable: true, configurable: true });
    hostErrors.set(e, kind);
    return e;
  }

  // An Error the host made without a stack: it gets one where the program's await throws it.
  function markHostError(e, name, message, kind) {
    define(e, "message", { value: message, writable: true, configurable: true });
    define(e, "name", { value: name, writable: true, configurable: true });
    hostErrors.set(e, kind);
  }

  return {
    installTools(toolNames, maxCalls) {
      for (let i = 0; i < toolNames.length; i++) {
        const index = i;
        const fname = "external_" + toolNames[i];
        const fn = {
          [fname](input) {
          let promise;
          try {
            promise = hostCall(index, input === undefined ? {} : input);
          } catch (err) {
            return Promise.reject(hostError("InvalidArgumentsError",
              fname + ": the argument cannot be serialised as JSON (" + err.message + ")", "invalid_args"));
          }
          if (promise === false) {
            return Promise.reject(hostError("InvalidArgumentsError",
              fname + ": the argument must be a JSON object, got " + format(input), "invalid_args"));
          }
          if (typeof promise === "number") {
            return Promise.reject(hostError("InvalidArgumentsError",
              fname + ": the argument is nested deeper than " + promise + " levels", "invalid_args"));
          }
          if (promise === null) {
            return Promise.reject(hostError("InvalidArgumentsError",
              fname + ": tool call limit reached (at most " + maxCalls + " calls per execution)", "invalid_args"));
          }
          return promise;
        },
      }[fname];
        define(G, fname, { value: fn, writable: false, enumerable: true, configurable: false });
      }
    },
    fire(id) {
      const callback = timers.get(id);
      if (callback !== undefined) {
        timers.delete(id);
        callback();
      }
    },
    hostError,
    markHostError,
    // The source text of a function the engine parsed (built-ins as the prelude found them).
    sourceOf(f) {
      return isFunction(f) ? apply(functionSource, f, []) : null;
    },
    // The report channel (handed to the program only when the host opens it).
    channel: function report(text) {
      hostReport(typeof text === "string" ? text : String(text));
    },
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
          message = e instanceof Error || "message" in e ? String(e.message) : format(e);
        } catch (x) { message = "[unprintable]"; }
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
