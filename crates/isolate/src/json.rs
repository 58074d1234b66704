//! JSON across the bridge without the engine's `JSON.stringify` / `JSON.parse`.
//!
//! Tool arguments and results are usually small objects; for those QuickJS's JSON functions
//! cost microseconds of fixed overhead each. Plain data (plain objects, arrays, strings,
//! numbers, booleans, null) is written and built here directly, with `JSON.stringify`'s
//! rules; anything else (`toJSON`, class instances, Dates, Maps, proxies, BigInts, cycles,
//! binary values) is left to the engine's own writer in its form for the host
//! ([`stringify_for_host`]), so the observable result is the same.

use std::cell::RefCell;
use std::fmt::Write as _;

use rquickjs::{qjs, Array, Ctx, Object, Type, Value};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::execution::Control;
use crate::text;

extern "C" {
    /// `JSON.stringify(obj)` as values cross to the host (vendor/rquickjs-sys/PATCHES.md):
    /// ArrayBuffer, DataView, Uint8Array and Uint8ClampedArray as base64, other typed arrays
    /// as arrays of numbers; base64 that would take the text past `max_len` characters is
    /// left out (`""` stands for it) and its length added to `*over`.
    fn JS_CodemodeJSONStringify(
        ctx: *mut qjs::JSContext,
        obj: qjs::JSValue,
        max_len: i64,
        over: *mut i64,
    ) -> qjs::JSValue;
}

/// The engine's JSON of `value` as it crosses to the host (a string, or undefined when
/// `JSON.stringify` would give undefined), and how many bytes of base64 it left out because
/// the text would have gone past `max_len`: the whole JSON is the text's UTF-8 length plus
/// those. Throws where `JSON.stringify` throws (cycles, BigInts, a throwing `toJSON`), at
/// the memory limit and when interrupted.
pub(crate) fn stringify_for_host<'js>(
    ctx: &Ctx<'js>,
    value: &Value<'js>,
    max_len: usize,
) -> rquickjs::Result<(Value<'js>, usize)> {
    let mut over: i64 = 0;
    let max_len = i64::try_from(max_len).unwrap_or(i64::MAX);
    // SAFETY: a live value of this context (borrowed: the callee takes no reference); the
    // result is a new value the caller owns.
    let raw = unsafe {
        JS_CodemodeJSONStringify(ctx.as_raw().as_ptr(), value.as_raw(), max_len, &mut over)
    };
    let json = owned(ctx, raw)?;
    Ok((json, usize::try_from(over).unwrap_or(usize::MAX)))
}

const CLASS_OBJECT: u32 = 1;
const CLASS_ARRAY: u32 = 2;
const MAX_DEPTH: usize = 64;
/// Elements and properties written between two looks at the deadline.
const CHECK_EVERY: u32 = 1024;

/// Why [`stringify_plain`] did not write the value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The value is not plain data: use the engine's `JSON.stringify`.
    NotPlain,
    /// The JSON would not fit in the execution's memory (marked as exceeded), or the
    /// execution was interrupted (deadline, cancellation) while it was being written.
    Limit,
}

/// What one [`stringify_plain`] may use: at most `max_bytes` of output, and the execution's
/// control block, whose deadline is checked as it goes.
pub(crate) struct Budget<'a> {
    max_bytes: usize,
    control: &'a Control,
    ops: u32,
}

impl<'a> Budget<'a> {
    /// Output up to the room left under the execution's memory limit.
    pub(crate) fn new(control: &'a Control) -> Self {
        Self {
            max_bytes: control.meter.room(),
            control,
            ops: 0,
        }
    }

    fn check(&mut self, out: &str) -> Result<(), Stop> {
        if out.len() > self.max_bytes {
            self.control.meter.charge_bridge(out.len());
            return Err(Stop::Limit);
        }
        self.ops += 1;
        if self.ops.is_multiple_of(CHECK_EVERY) && self.control.should_interrupt() {
            return Err(Stop::Limit);
        }
        Ok(())
    }
}

type Written = rquickjs::Result<Result<(), Stop>>;

/// `JSON.stringify(value)` when `value` is plain data, written here without the engine's
/// fixed costs. Everything the engine would do differently (`toJSON`, class instances,
/// Dates, Maps, proxies, BigInts, cycles) is [`Stop::NotPlain`]; output past the budget, or
/// an interrupt while writing, is [`Stop::Limit`].
pub(crate) fn stringify_plain(
    value: &Value<'_>,
    budget: &mut Budget<'_>,
) -> rquickjs::Result<Result<String, Stop>> {
    let mut out = String::with_capacity(32);
    Ok(write_value(value, &mut out, 0, budget)?.map(|()| out))
}

fn write_value(
    value: &Value<'_>,
    out: &mut String,
    depth: usize,
    budget: &mut Budget<'_>,
) -> Written {
    match value.type_of() {
        Type::Null => out.push_str("null"),
        Type::Bool => out.push_str(if value.as_bool() == Some(true) {
            "true"
        } else {
            "false"
        }),
        Type::Int => {
            let _ = write!(out, "{}", value.as_int().unwrap_or_default());
        }
        Type::Float => write_number(value.as_float().unwrap_or(f64::NAN), out),
        Type::String => {
            let room = budget.max_bytes.saturating_sub(out.len());
            match text::string_of(value.ctx(), value, room) {
                Some(Ok(text)) => write_string(&text, out),
                Some(Err(_)) => {
                    budget
                        .control
                        .meter
                        .charge_bridge(budget.max_bytes.saturating_add(1));
                    return Ok(Err(Stop::Limit));
                }
                None => return Ok(Err(Stop::NotPlain)),
            }
        }
        Type::Array | Type::Object if depth < MAX_DEPTH => {
            let Some(object) = value.as_object() else {
                return Ok(Err(Stop::NotPlain));
            };
            // SAFETY: reading the class id of a live object value.
            let class = unsafe { qjs::JS_GetClassID(value.as_raw()) };
            if !object.get::<_, Value>("toJSON")?.is_undefined() {
                return Ok(Err(Stop::NotPlain));
            }
            return match class {
                CLASS_ARRAY => write_array(object, out, depth, budget),
                CLASS_OBJECT => write_object(object, out, depth, budget),
                _ => Ok(Err(Stop::NotPlain)),
            };
        }
        _ => return Ok(Err(Stop::NotPlain)),
    }
    Ok(budget.check(out))
}

/// A value the engine returned, or its pending exception as an error.
fn owned<'js>(ctx: &Ctx<'js>, raw: qjs::JSValue) -> rquickjs::Result<Value<'js>> {
    // SAFETY: `raw` is a value the engine just returned, whose one reference is ours: its tag
    // can be read, and unless it marks an exception (which holds no reference),
    // `Value::from_raw` takes that reference over and frees it on drop.
    unsafe {
        if qjs::JS_VALUE_GET_TAG(raw) == qjs::JS_TAG_EXCEPTION {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Value::from_raw(ctx.clone(), raw))
    }
}

fn write_array(
    object: &Object<'_>,
    out: &mut String,
    depth: usize,
    budget: &mut Budget<'_>,
) -> Written {
    let ctx = object.ctx();
    let raw = ctx.as_raw().as_ptr();
    let mut len: i64 = 0;
    // SAFETY: the length of a live array (any value up to 2**32 - 1).
    if unsafe { qjs::JS_GetLength(raw, object.as_raw(), &mut len) } < 0 {
        return Err(rquickjs::Error::Exception);
    }
    out.push('[');
    for i in 0..len {
        if i > 0 {
            out.push(',');
        }
        // SAFETY: a property read on a live object; the result is owned by `item`.
        let item = owned(ctx, unsafe {
            qjs::JS_GetPropertyInt64(raw, object.as_raw(), i)
        })?;
        if skipped(&item) {
            out.push_str("null");
            if let Err(stop) = budget.check(out) {
                return Ok(Err(stop));
            }
        } else if let Err(stop) = write_value(&item, out, depth + 1, budget)? {
            return Ok(Err(stop));
        }
    }
    out.push(']');
    Ok(Ok(()))
}

/// An object's own enumerable string keys, in `JSON.stringify`'s order, freed on drop.
struct Keys<'js> {
    ctx: Ctx<'js>,
    table: *mut qjs::JSPropertyEnum,
    len: u32,
}

impl<'js> Keys<'js> {
    fn of(object: &Object<'js>) -> rquickjs::Result<Self> {
        let ctx = object.ctx().clone();
        let mut table = std::ptr::null_mut();
        let mut len = 0;
        let flags = (qjs::JS_GPN_STRING_MASK | qjs::JS_GPN_ENUM_ONLY) as i32;
        // SAFETY: enumerates a live object; the table is freed in Drop.
        let status = unsafe {
            qjs::JS_GetOwnPropertyNames(
                ctx.as_raw().as_ptr(),
                &mut table,
                &mut len,
                object.as_raw(),
                flags,
            )
        };
        if status < 0 {
            return Err(rquickjs::Error::Exception);
        }
        Ok(Self { ctx, table, len })
    }

    fn atoms(&self) -> impl Iterator<Item = qjs::JSAtom> + '_ {
        let entries: &[qjs::JSPropertyEnum] = if self.table.is_null() {
            &[]
        } else {
            // SAFETY: JS_GetOwnPropertyNames wrote `len` initialised entries at `table`,
            // which lives (unchanged) until `self` is dropped, past this borrow.
            unsafe { std::slice::from_raw_parts(self.table, self.len as usize) }
        };
        entries.iter().map(|e| e.atom)
    }
}

impl Drop for Keys<'_> {
    fn drop(&mut self) {
        if !self.table.is_null() {
            // SAFETY: the table JS_GetOwnPropertyNames made, freed once.
            unsafe { qjs::JS_FreePropertyEnum(self.ctx.as_raw().as_ptr(), self.table, self.len) };
        }
    }
}

fn write_object(
    object: &Object<'_>,
    out: &mut String,
    depth: usize,
    budget: &mut Budget<'_>,
) -> Written {
    let ctx = object.ctx();
    let raw = ctx.as_raw().as_ptr();
    let keys = Keys::of(object)?;
    out.push('{');
    let mut first = true;
    for atom in keys.atoms() {
        // SAFETY: a property read on a live object; the result is owned by `item`.
        let item = owned(ctx, unsafe {
            qjs::JS_GetProperty(raw, object.as_raw(), atom)
        })?;
        if skipped(&item) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let Some(key) = text::atom(ctx, atom) else {
            return Err(rquickjs::Error::Exception);
        };
        write_string(&key, out);
        out.push(':');
        if let Err(stop) = write_value(&item, out, depth + 1, budget)? {
            return Ok(Err(stop));
        }
    }
    out.push('}');
    Ok(Ok(()))
}

/// The deepest nesting of arrays and objects in JSON text (0 for a scalar).
pub(crate) fn depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Values `JSON.stringify` leaves out of objects (and writes as `null` in arrays).
fn skipped(value: &Value<'_>) -> bool {
    matches!(
        value.type_of(),
        Type::Undefined | Type::Uninitialized | Type::Function | Type::Constructor | Type::Symbol
    )
}

fn write_number(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str("null");
    } else if f == 0.0 {
        out.push('0');
    } else if f.abs() < 1e21 {
        let _ = write!(out, "{f}");
    } else {
        let _ = write!(out, "{f:e}");
    }
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// `JSON.parse(text)`. Values are built directly; what this reader refuses (nesting
/// deeper than 128, lone surrogate escapes, invalid JSON) goes to the engine's `JSON.parse`,
/// which has the last word. Property order is kept, and keys such as `__proto__` become own
/// data properties, as `JSON.parse` makes them.
pub(crate) fn parse<'js>(ctx: &Ctx<'js>, text: &str) -> rquickjs::Result<Value<'js>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let atoms = AtomCache {
        ctx: ctx.clone(),
        entries: RefCell::new(Vec::new()),
    };
    let built = Builder { ctx, atoms: &atoms }
        .deserialize(&mut deserializer)
        .and_then(|v| deserializer.end().map(|()| v));
    drop(atoms);
    match built {
        Ok(value) => Ok(value),
        Err(_) => ctx.json_parse(text),
    }
}

struct Builder<'a, 'js> {
    ctx: &'a Ctx<'js>,
    atoms: &'a AtomCache<'js>,
}

/// Property keys of one parse: a list of results usually repeats the same few keys, and
/// looking each one up in the engine's atom table again is most of the cost of a property.
struct AtomCache<'js> {
    ctx: Ctx<'js>,
    entries: RefCell<Vec<(String, qjs::JSAtom)>>,
}

impl AtomCache<'_> {
    const SIZE: usize = 64;

    fn get(&self, key: &str) -> qjs::JSAtom {
        let mut entries = self.entries.borrow_mut();
        if let Some((_, atom)) = entries.iter().find(|(k, _)| k == key) {
            return *atom;
        }
        // SAFETY: a new atom from a live context; freed in Drop (or below, when not cached).
        let atom = unsafe {
            qjs::JS_NewAtomLen(
                self.ctx.as_raw().as_ptr(),
                key.as_ptr().cast(),
                key.len() as _,
            )
        };
        if entries.len() < Self::SIZE && atom != qjs::JS_ATOM_NULL {
            entries.push((key.to_owned(), atom));
        }
        atom
    }

    fn release(&self, atom: qjs::JSAtom) {
        if !self.entries.borrow().iter().any(|(_, a)| *a == atom) {
            // SAFETY: an atom made by `get` and not kept in the cache.
            unsafe { qjs::JS_FreeAtom(self.ctx.as_raw().as_ptr(), atom) };
        }
    }
}

impl Drop for AtomCache<'_> {
    fn drop(&mut self) {
        for (_, atom) in self.entries.get_mut().drain(..) {
            // SAFETY: each cached atom was made by `get` and is freed once.
            unsafe { qjs::JS_FreeAtom(self.ctx.as_raw().as_ptr(), atom) };
        }
    }
}

fn engine<E: serde::de::Error>(_: rquickjs::Error) -> E {
    E::custom("the engine could not allocate the value")
}

impl<'de, 'js> DeserializeSeed<'de> for Builder<'_, 'js> {
    type Value = Value<'js>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value<'js>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'js> Visitor<'de> for Builder<'_, 'js> {
    type Value = Value<'js>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value<'js>, E> {
        Ok(Value::new_null(self.ctx.clone()))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value<'js>, E> {
        Ok(Value::new_bool(self.ctx.clone(), v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value<'js>, E> {
        Ok(match i32::try_from(v) {
            Ok(i) => Value::new_int(self.ctx.clone(), i),
            Err(_) => Value::new_float(self.ctx.clone(), v as f64),
        })
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value<'js>, E> {
        Ok(match i32::try_from(v) {
            Ok(i) => Value::new_int(self.ctx.clone(), i),
            Err(_) => Value::new_float(self.ctx.clone(), v as f64),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value<'js>, E> {
        Ok(Value::new_number(self.ctx.clone(), v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value<'js>, E> {
        rquickjs::String::from_str(self.ctx.clone(), v)
            .map(|s| s.into_value())
            .map_err(engine)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'js>, A::Error> {
        let array = Array::new(self.ctx.clone()).map_err(engine)?;
        let mut i = 0;
        while let Some(item) = seq.next_element_seed(Builder {
            ctx: self.ctx,
            atoms: self.atoms,
        })? {
            array.set(i, item).map_err(engine)?;
            i += 1;
        }
        Ok(array.into_value())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'js>, A::Error> {
        let object = Object::new(self.ctx.clone()).map_err(engine)?;
        let raw_ctx = self.ctx.as_raw().as_ptr();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let item = map.next_value_seed(Builder {
                ctx: self.ctx,
                atoms: self.atoms,
            })?;
            let atom = self.atoms.get(&key);
            if atom == qjs::JS_ATOM_NULL {
                return Err(engine(rquickjs::Error::Allocation));
            }
            // SAFETY: a new reference for the call to own; `item` drops its own.
            let raw_item = unsafe { qjs::JS_DupValue(raw_ctx, item.as_raw()) };
            drop(item);
            // SAFETY: defines an own data property (as JSON.parse does, so `__proto__` stays
            // a plain key); the call takes ownership of the value.
            let defined = unsafe {
                qjs::JS_DefinePropertyValue(
                    raw_ctx,
                    object.as_raw(),
                    atom,
                    raw_item,
                    qjs::JS_PROP_C_W_E as i32,
                )
            };
            self.atoms.release(atom);
            if defined < 0 {
                return Err(engine(rquickjs::Error::Exception));
            }
        }
        Ok(object.into_value())
    }
}

#[cfg(test)]
mod tests {
    use rquickjs::{Context, Runtime};

    use super::*;

    fn plain(value: &Value<'_>) -> Option<String> {
        let control = Control::new(std::sync::Arc::new(crate::alloc::Meter::new()));
        stringify_plain(value, &mut Budget::new(&control))
            .unwrap()
            .ok()
    }

    fn with_ctx(f: impl FnOnce(&Ctx<'_>)) {
        let runtime = Runtime::new().unwrap();
        let context = Context::full(&runtime).unwrap();
        context.with(|ctx| f(&ctx));
    }

    #[test]
    fn plain_values_match_json_stringify() {
        with_ctx(|ctx| {
            for source in [
                "({ a: 1, b: 'x\"\\n\\u0001', c: [1, undefined, () => 1, null], d: { e: true, f: undefined } })",
                "[1.5, -0, 1e21, 1e-7, NaN, Infinity, 2 ** 53, -12]",
                "({ 'ü ✓': '😀', '': 0 })",
                "'just a string'",
            ] {
                let value: Value = ctx.eval(source).unwrap();
                let ours = plain(&value).expect("plain");
                let theirs = ctx.json_stringify(value).unwrap().unwrap().to_string().unwrap();
                let a: serde_json::Value = serde_json::from_str(&ours).unwrap();
                let b: serde_json::Value = serde_json::from_str(&theirs).unwrap();
                assert_eq!(a, b, "{source}: {ours} vs {theirs}");
            }
        });
    }

    #[test]
    fn non_plain_values_are_left_to_the_engine() {
        with_ctx(|ctx| {
            for source in [
                "new Date(0)",
                "({ toJSON() { return 1 } })",
                "new Map()",
                "10n",
                "(() => { const a = {}; a.a = a; return a })()",
                "new Proxy({}, {})",
                "({ nested: [new Date(0)] })",
                "new Uint8Array(2)",
                "({ nested: [new ArrayBuffer(2)] })",
                "undefined",
            ] {
                let value: Value = ctx.eval(source).unwrap();
                assert!(plain(&value).is_none(), "{source}");
            }
        });
    }

    #[test]
    fn binary_values_are_written_for_the_host() {
        with_ctx(|ctx| {
            let value: Value = ctx
                .eval("({ u: new Uint8Array([1, 2, 3, 4, 5]).subarray(1), n: new Int16Array([-1]), s: 'x' })")
                .unwrap();
            let (json, over) = stringify_for_host(ctx, &value, usize::MAX).unwrap();
            assert_eq!(
                text::string(ctx, &json).unwrap(),
                r#"{"u":"AgMEBQ==","n":[-1],"s":"x"}"#
            );
            assert_eq!(over, 0);
            // Past the limit the base64 is left out and counted, never built.
            let (json, over) = stringify_for_host(ctx, &value, 10).unwrap();
            assert_eq!(text::string(ctx, &json).unwrap(), r#"{"u":"","n":[-1],"s":"x"}"#);
            assert_eq!(over, 8);
            let (json, _) = stringify_for_host(ctx, &Value::new_undefined(ctx.clone()), 10).unwrap();
            assert!(json.is_undefined());
            // The program's own JSON.stringify is ECMAScript's.
            let own: String = ctx.eval("JSON.stringify(new Uint8Array([1]))").unwrap();
            assert_eq!(own, r#"{"0":1}"#);
        });
    }

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(depth("1"), 0);
        assert_eq!(depth(r#"{"a":[1,{"b":"[[[[\\"]]"}]}"#), 3);
        assert_eq!(
            depth(&format!("{}{}", "[".repeat(2000), "]".repeat(2000))),
            2000
        );
    }

    #[test]
    fn parse_builds_own_properties_in_order() {
        with_ctx(|ctx| {
            let value = parse(
                ctx,
                r#"{"b":1,"a":[true,null,"x",2.5,-3,12345678901],"__proto__":{"p":1}}"#,
            )
            .unwrap();
            ctx.globals().set("v", value).unwrap();
            let check: String = ctx
                .eval("JSON.stringify([Object.keys(v), v.p === undefined, Object.getPrototypeOf(v) === Object.prototype, v.__proto__])")
                .unwrap();
            assert_eq!(check, r#"[["b","a","__proto__"],true,true,{"p":1}]"#);
            assert!(parse(ctx, "{").is_err());
            let _ = ctx.catch();
            assert!(parse(ctx, "[1] 2").is_err());
            let _ = ctx.catch();
            let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
            assert!(parse(ctx, &deep).unwrap().is_array());
            let lone: Value = parse(ctx, r#""\ud800""#).unwrap();
            assert!(lone.as_string().unwrap().to_string().is_err());
        });
    }
}
