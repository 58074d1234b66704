// The skills runtime: a host library (see `IsolateContext.execute(library=...)`), compiled once
// per process. Loaded by python/codemode/skills/sandbox.py, which puts the replay prelude of
// python/codemode/approvals/replay.py (`DETERMINISTIC_JS`) in place of __CM_DETERMINISTIC__.
// The text is one expression (no statement, no trailing semicolon): every engine evaluates it
// as the value of the library.
//
// The engine calls it with the execution's report channel `R` (undefined when it is not open);
// line 1 of the program calls what it returns, `skills(bodies, names, schemas, detail, max)`,
// with the body function of each skill (null for one refused), `[name, why refused or null]`
// per skill, `[input schema, output schema or null, whether the input schema has defaults]`
// per skill, whether to report details and how many calls may carry them, and gets the
// `skill_*` functions.
//
// Reports (one line each): `h` (the runtime took the channel); `c<i>:<n>` call `n` (the
// execution's count of skill calls) of skill `i` (`c<i>:<n> <input JSON>` with details);
// `x<i>:<n>` its input was refused (not a run); `r<i>:<n>` it returned (`r<i>:<n> <ms>
// <result JSON>`); `f<i>:<n>` it failed (`f<i>:<n> <ms> <message>`). Before the skills, the
// replay prelude's `d <ms>` (a clock reading) and `t <k>` (a timer fired).
(function (R) {
  "use strict";
  const stringify = JSON.stringify;
  const now = Date.now;  // the real clock: a replayed run's program sees a recorded one
  let detailed = 0, calls = 0;
  let V, D, M;
  function fail(name, message) {
    const e = new Error(message);
    Object.defineProperty(e, "name", { value: name, writable: true, configurable: true });
    return e;
  }
  function json(v) {
    try { const t = stringify(v); return t === undefined ? "null" : t; } catch (x) { return "null"; }
  }
  function describe(e) {
    try { return e instanceof Error ? e.name + ": " + e.message : String(e); } catch (x) { return "error"; }
  }
  function refuse(name, why) {
    const message = "skill_" + name + ": " + why;
    const refused = function (input) { return Promise.reject(fail("SkillError", message)); };
    return { ["skill_" + name]: refused }["skill_" + name];
  }
  function wrap(i, name, body) {
    const schemas = V[i];
    return { ["skill_" + name]: async function (input) {
      if (input === undefined) input = {};
      const k = i + ":" + (++calls);  // the skill's index and the call's number, in each report
      const d = D && detailed < M;
      if (d) detailed++;
      if (R) R(d ? "c" + k + " " + json(input) : "c" + k);
      const t = d ? now() : 0;
      if (schemas[2]) input = JSON.parse(JSON.stringify(input));
      const bad = check(schemas[0], input, "input", schemas[0], true);
      if (bad !== null) {
        const m = "skill_" + name + ": invalid input: " + bad;
        if (R) R(d ? "x" + k + " " + m : "x" + k);
        throw fail("InvalidArgumentsError", m);
      }
      let out;
      try { out = await body(input); } catch (e) {
        if (R) R(d ? "f" + k + " " + (now() - t) + " " + describe(e) : "f" + k);
        throw e;
      }
      const wrong = schemas[1] === null ? null : check(schemas[1], out, "output", schemas[1], false);
      if (wrong !== null) {
        const m = "skill_" + name + " returned an invalid result: " + wrong;
        if (R) R(d ? "f" + k + " " + (now() - t) + " " + m : "f" + k);
        throw fail("SkillError", m);
      }
      if (R) R(d ? "r" + k + " " + (now() - t) + " " + json(out) : "r" + k);
      return out;
    } }["skill_" + name];
  }
  function skills(bodies, names, schemas, detail, max) {
    V = schemas; D = detail; M = max;
    if (R) R("h");
    const made = {};
    for (let i = 0; i < names.length; i++) {
      const [name, why] = names[i];
      made["skill_" + name] = why === null ? wrap(i, name, bodies[i]) : refuse(name, why);
    }
    return made;
  }
  // The JSON Schema interpreter the wrappers check inputs and outputs with: `check(schema,
  // value, name, root schema, fill)` is null or what is wrong (`input.n must be number`).
  const check = (function () {
    function __cm_is(t, v) {
      switch (t) {
        case "object": return v !== null && typeof v === "object" && !Array.isArray(v);
        case "array": return Array.isArray(v);
        case "string": return typeof v === "string";
        case "integer": return Number.isInteger(v);
        case "number": return typeof v === "number" && isFinite(v);
        case "boolean": return typeof v === "boolean";
        case "null": return v === null;
      }
      return true;
    }
    function __cm_eq(a, b) {
      if (a === b) return true;
      if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
      return JSON.stringify(a) === JSON.stringify(b);
    }
    const __cm_label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    const __cm_formats = {
      "date-time": /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/,
      "date": /^\d{4}-\d{2}-\d{2}$/,
      "time": /^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$/,
      "email": /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
      "uuid": /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
      "uri": /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/,
      "ipv4": /^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$/,
      "hostname": new RegExp("^(?=.{1,253}$)" + __cm_label + "(\\." + __cm_label + ")*$"),
    };
    function __cm_format(f, v) {
      const re = __cm_formats[f];
      if (re === undefined) return true;  // formats it does not know are annotations
      if (!re.test(v)) return false;
      return (f !== "date" && f !== "date-time") || !isNaN(Date.parse(f === "date" ? v + "T00:00:00Z" : v));
    }
    function __cm_key(x) {
      // the same key for values JSON Schema calls equal (object keys in any order)
      if (x === null || typeof x !== "object") return typeof x + ":" + JSON.stringify(x);
      if (Array.isArray(x)) return "[" + x.map(__cm_key).join(",") + "]";
      return "{" + Object.keys(x).sort().map((k) => JSON.stringify(k) + ":" + __cm_key(x[k])).join(",") + "}";
    }
    function __cm_ref(root, ref) {
      if (typeof ref !== "string" || ref[0] !== "#") return undefined;
      let node = root;
      const parts = ref.slice(1).split("/");
      for (let i = 1; i < parts.length; i++) {
        if (node === undefined || node === null) return undefined;
        node = node[decodeURIComponent(parts[i]).replace(/~1/g, "/").replace(/~0/g, "~")];
      }
      return node;
    }
    // `fill`: put each missing property's `default` in (inputs only; the wrapper copied them).
    function check(s, v, p, root, fill) {
      if (s === true || s === undefined || s === null) return null;
      if (s === false) return p + " is not allowed";
      let e;
      if (s.$ref !== undefined) {
        const target = __cm_ref(root, s.$ref);
        if (target !== undefined && (e = check(target, v, p, root, fill))) return e;
      }
      const t = s.type;
      if (t !== undefined) {
        let ok = false;
        if (typeof t === "string") ok = __cm_is(t, v);
        else for (let i = 0; i < t.length && !ok; i++) ok = __cm_is(t[i], v);
        if (!ok && !(s.nullable === true && v === null))
          return p + " must be " + (typeof t === "string" ? t : t.join(" or "));
      }
      if (s.enum !== undefined) {
        let ok = false;
        for (let i = 0; i < s.enum.length && !ok; i++) ok = __cm_eq(s.enum[i], v);
        if (!ok) return p + " must be one of " + JSON.stringify(s.enum);
      }
      if (s.const !== undefined && !__cm_eq(s.const, v)) return p + " must be " + JSON.stringify(s.const);
      if (typeof v === "number") {
        if (s.minimum !== undefined && v < s.minimum) return p + " must be >= " + s.minimum;
        if (s.maximum !== undefined && v > s.maximum) return p + " must be <= " + s.maximum;
        if (typeof s.exclusiveMinimum === "number" && v <= s.exclusiveMinimum)
          return p + " must be > " + s.exclusiveMinimum;
        if (typeof s.exclusiveMaximum === "number" && v >= s.exclusiveMaximum)
          return p + " must be < " + s.exclusiveMaximum;
        if (s.multipleOf !== undefined && !Number.isInteger(v / s.multipleOf))
          return p + " must be a multiple of " + s.multipleOf;
      } else if (typeof v === "string") {
        if (s.minLength !== undefined && v.length < s.minLength)
          return p + " must be at least " + s.minLength + " characters";
        if (s.maxLength !== undefined && v.length > s.maxLength)
          return p + " must be at most " + s.maxLength + " characters";
        if (s.pattern !== undefined && !new RegExp(s.pattern, "u").test(v))
          return p + " must match " + JSON.stringify(s.pattern);
        if (typeof s.format === "string" && !__cm_format(s.format, v))
          return p + " must be a valid " + s.format;
      } else if (Array.isArray(v)) {
        if (s.minItems !== undefined && v.length < s.minItems)
          return p + " must have at least " + s.minItems + " items";
        if (s.maxItems !== undefined && v.length > s.maxItems)
          return p + " must have at most " + s.maxItems + " items";
        if (s.uniqueItems === true) {
          const seen = new Set();
          for (let i = 0; i < v.length; i++) {
            const k = __cm_key(v[i]);
            if (seen.has(k)) return p + " must not have duplicate items";
            seen.add(k);
          }
        }
        const prefix = s.prefixItems;
        for (let i = 0; i < v.length; i++) {
          const item = prefix !== undefined && i < prefix.length ? prefix[i] : s.items;
          if (item !== undefined && (e = check(item, v[i], p + "[" + i + "]", root, fill))) return e;
        }
      } else if (v !== null && typeof v === "object") {
        const req = s.required;
        if (req !== undefined)
          for (let i = 0; i < req.length; i++)
            if (!(req[i] in v)) return p + " must have property " + JSON.stringify(req[i]);
        const props = s.properties, extra = s.additionalProperties;
        if (fill && props !== undefined)
          for (const k in props)
            if (!(k in v) && props[k] !== null && typeof props[k] === "object" && props[k].default !== undefined)
              v[k] = JSON.parse(JSON.stringify(props[k].default));
        if (s.minProperties !== undefined || s.maxProperties !== undefined) {
          const n = Object.keys(v).length;
          if (s.minProperties !== undefined && n < s.minProperties)
            return p + " must have at least " + s.minProperties + " properties";
          if (s.maxProperties !== undefined && n > s.maxProperties)
            return p + " must have at most " + s.maxProperties + " properties";
        }
        if (props !== undefined || extra !== undefined) {
          for (const k in v) {
            const sub = props !== undefined && Object.prototype.hasOwnProperty.call(props, k) ? props[k] : extra;
            if (sub !== undefined && (e = check(sub, v[k], p + "." + k, root, fill))) return e;
          }
        }
      }
      if (s.allOf !== undefined)
        for (let i = 0; i < s.allOf.length; i++) if ((e = check(s.allOf[i], v, p, root, fill))) return e;
      if (s.anyOf !== undefined) {
        let ok = false;
        for (let i = 0; i < s.anyOf.length && !ok; i++) ok = check(s.anyOf[i], v, p, root, false) === null;
        if (!ok) return p + " must match one of the allowed shapes";
      }
      if (s.oneOf !== undefined) {
        let n = 0;
        for (let i = 0; i < s.oneOf.length; i++) if (check(s.oneOf[i], v, p, root, false) === null) n++;
        if (n !== 1) return p + " must match exactly one of the allowed shapes";
      }
      if (s.not !== undefined && check(s.not, v, p, root, false) === null)
        return p + " must not match the excluded shape";
      return null;
    }
    return check;
  })();
  // A run that may pause calls this first (line 1, before the skills), see approvals/replay.py.
  skills.deterministic = (__CM_DETERMINISTIC__)(R || function () {});
  return skills;
})
