//! A pickle reader that treats the file as data: it understands the opcodes that
//! CIFAR's python files use (protocol 2 as written by Python 2's cPickle and by
//! Python 3, plus protocol 3's bytes opcodes) and rebuilds dicts, lists, tuples,
//! strings, bytes, integers and numpy arrays. It never imports or calls anything:
//! the only globals it accepts are the four that numpy arrays and Python 3 bytes
//! are pickled with, and it interprets them itself. Any other opcode or global is
//! an error naming it and its byte offset.
//!
//! Longer than the project's ~450-line files on purpose: the opcodes and the
//! values they build are one state machine, read together when a file fails.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A numpy array's metadata and raw bytes, as `ndarray.__reduce__` pickles them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Array {
    /// The dtype as numpy's `dtype.str`: byte order and type code, e.g. `|u1`
    /// (byte order not applicable), `<i8`.
    pub descr: String,
    pub shape: Vec<usize>,
    pub fortran: bool,
    pub data: Rc<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// Python 3 `str`, Python 2 `unicode`: its UTF-8 as written, checked when it is
    /// read as text (a CIFAR array in Python 3's protocol 2 is a 30–150 MB string
    /// that is only ever turned into bytes).
    Str(Rc<Vec<u8>>),
    /// Python 2 `str`, Python 3 `bytes`.
    Bytes(Rc<Vec<u8>>),
    List(Rc<RefCell<Vec<Value>>>),
    Tuple(Rc<Vec<Value>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Array(Rc<RefCell<Array>>),
    /// A `numpy.dtype`: its type code, prefixed with the byte order by BUILD.
    Dtype(Rc<RefCell<String>>),
    Global(Callable),
}

/// Containers are freed with a work list instead of recursion: a few bytes of
/// pickle (TUPLE1 repeated) nest a million levels deep, and recursive drops would
/// overflow the stack.
impl Drop for Value {
    fn drop(&mut self) {
        let mut work = Vec::new();
        self.take_children(&mut work);
        while let Some(mut v) = work.pop() {
            v.take_children(&mut work);
        }
    }
}

impl Value {
    /// Moves out the items of a container nothing else refers to.
    fn take_children(&mut self, work: &mut Vec<Value>) {
        match self {
            Value::List(l) if Rc::strong_count(l) == 1 => work.append(&mut l.borrow_mut()),
            Value::Dict(d) if Rc::strong_count(d) == 1 => {
                for (k, v) in d.borrow_mut().drain(..) {
                    work.extend([k, v]);
                }
            }
            Value::Tuple(t) => {
                if let Some(items) = Rc::get_mut(t) {
                    work.append(items);
                }
            }
            _ => {}
        }
    }
}

/// The globals the reader interprets (it calls none of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callable {
    /// `numpy.core.multiarray._reconstruct` (`numpy._core` in numpy 2).
    Reconstruct,
    /// `numpy.ndarray`, the first argument of `_reconstruct`.
    NdArray,
    /// `numpy.dtype`.
    Dtype,
    /// `_codecs.encode`: Python 3 writes bytes in protocol 2 as
    /// `_codecs.encode(text, "latin1")`.
    Encode,
}

impl Callable {
    fn from_global(module: &str, name: &str) -> Option<Callable> {
        match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Some(Callable::Reconstruct)
            }
            ("numpy", "ndarray") => Some(Callable::NdArray),
            ("numpy", "dtype") => Some(Callable::Dtype),
            ("_codecs", "encode") => Some(Callable::Encode),
            _ => None,
        }
    }
}

impl Value {
    /// The value of `key` in a dict whose keys are str or bytes.
    pub fn get(&self, key: &str) -> Option<Value> {
        let Value::Dict(items) = self else {
            return None;
        };
        let items = items.borrow();
        items
            .iter()
            .find(|(k, _)| k.text().as_deref() == Some(key))
            .map(|(_, v)| v.clone())
    }

    /// str, or bytes read as UTF-8 (lossy: class names are ASCII).
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Str(s) => std::str::from_utf8(s).ok().map(String::from),
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn items(&self) -> Option<Vec<Value>> {
        match self {
            Value::List(l) => Some(l.borrow().clone()),
            Value::Tuple(t) => Some(t.to_vec()),
            _ => None,
        }
    }

    pub fn array(&self) -> Option<Array> {
        match self {
            Value::Array(a) => Some(a.borrow().clone()),
            _ => None,
        }
    }

    /// What the value is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "a list",
            Value::Tuple(_) => "a tuple",
            Value::Dict(_) => "a dict",
            Value::Array(_) => "a numpy array",
            Value::Dtype(_) => "a numpy dtype",
            Value::Global(_) => "a global",
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

/// Reads one pickle. Errors say what went wrong and at which byte.
pub fn load(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader {
        bytes,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let at = r.pos;
        let op = r.take(1)?[0];
        match r.step(op) {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => return Err(format!("{e} (opcode {} at byte {at})", describe(op))),
        }
    }
}

fn describe(op: u8) -> String {
    if op.is_ascii_graphic() {
        format!("0x{op:02x} '{}'", op as char)
    } else {
        format!("0x{op:02x}")
    }
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let left = self.bytes.len() - self.pos;
        if n > left {
            return Err(format!(
                "truncated: {n} more bytes needed at byte {}, the file has {left} left \
                 (expected at least {} bytes, found {})",
                self.pos,
                self.pos + n,
                self.bytes.len()
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated: no end of line after a global's name")?;
        let text = std::str::from_utf8(&rest[..end])
            .map_err(|_| "a global's name is not UTF-8".to_string())?
            .to_string();
        self.pos += end + 1;
        Ok(text)
    }

    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".into())
    }

    fn top(&self) -> Result<&Value, String> {
        self.stack.last().ok_or_else(|| "stack underflow".into())
    }

    /// Everything pushed since the last MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("no MARK before this opcode")?;
        Ok(self.stack.split_off(mark))
    }

    fn bytes_value(&mut self, n: usize) -> Result<Value, String> {
        Ok(Value::Bytes(Rc::new(self.take(n)?.to_vec())))
    }

    fn str_value(&mut self, n: usize) -> Result<Value, String> {
        Ok(Value::Str(Rc::new(self.take(n)?.to_vec())))
    }

    fn length(&mut self) -> Result<usize, String> {
        let n = self.u32()?;
        i32::try_from(n)
            .map(|n| n as usize)
            .map_err(|_| format!("negative length {}", n as i32))
    }

    /// Executes one opcode; `Some` at STOP.
    fn step(&mut self, op: u8) -> Result<Option<Value>, String> {
        match op {
            0x80 => {
                // PROTO
                let p = self.u8()?;
                if !(2..=3).contains(&p) {
                    return Err(format!(
                        "pickle protocol {p} is not supported (only 2 and 3)"
                    ));
                }
            }
            b'.' => {
                // STOP
                let v = self.pop()?;
                return Ok(Some(v));
            }
            b'(' => self.marks.push(self.stack.len()),
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'J' => {
                let v = self.u32()? as i32;
                self.stack.push(Value::Int(v.into()));
            }
            b'K' => {
                let v = self.u8()?;
                self.stack.push(Value::Int(v.into()));
            }
            b'M' => {
                let v = self.u16()?;
                self.stack.push(Value::Int(v.into()));
            }
            0x8a => {
                // LONG1: little-endian two's complement of n bytes
                let n = self.u8()? as usize;
                if n > 8 {
                    return Err(format!("a {n}-byte integer does not fit in 64 bits"));
                }
                let b = self.take(n)?;
                let mut v: i64 = 0;
                for (i, &byte) in b.iter().enumerate() {
                    v |= i64::from(byte) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                self.stack.push(Value::Int(v));
            }
            b'U' | b'C' => {
                // SHORT_BINSTRING (Python 2 str), SHORT_BINBYTES
                let n = self.u8()? as usize;
                let v = self.bytes_value(n)?;
                self.stack.push(v);
            }
            b'T' | b'B' => {
                // BINSTRING, BINBYTES
                let n = self.length()?;
                let v = self.bytes_value(n)?;
                self.stack.push(v);
            }
            b'X' => {
                // BINUNICODE
                let n = self.length()?;
                let v = self.str_value(n)?;
                self.stack.push(v);
            }
            b'}' => self
                .stack
                .push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
            b']' => self
                .stack
                .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
            b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(Rc::new(items)));
            }
            0x85..=0x87 => {
                // TUPLE1..3
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.stack.push(Value::Tuple(Rc::new(items)));
            }
            b'a' => {
                let v = self.pop()?;
                self.append(vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            b'q' => {
                let i = self.u8()?;
                self.memo.insert(i.into(), self.top()?.clone());
            }
            b'r' => {
                let i = self.u32()?;
                self.memo.insert(i, self.top()?.clone());
            }
            b'h' | b'j' => {
                let i = if op == b'h' {
                    self.u8()?.into()
                } else {
                    self.u32()?
                };
                let v = self
                    .memo
                    .get(&i)
                    .cloned()
                    .ok_or_else(|| format!("memo entry {i} was never stored"))?;
                self.stack.push(v);
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let c = Callable::from_global(&module, &name).ok_or_else(|| {
                    format!(
                        "refusing global `{module}.{name}`: only numpy arrays, lists, dicts, \
                         strings and numbers are read"
                    )
                })?;
                self.stack.push(Value::Global(c));
            }
            b'R' => {
                let args = self.pop()?;
                let f = self.pop()?;
                let v = reduce(&f, &args)?;
                self.stack.push(v);
            }
            b'b' => {
                let state = self.pop()?;
                build(self.top()?, &state)?;
            }
            _ => return Err("unsupported pickle opcode".into()),
        }
        Ok(None)
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), String> {
        match self.top()? {
            Value::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            other => Err(format!("APPEND to {}, not a list", other.kind())),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values".into());
        }
        match self.top()? {
            Value::Dict(d) => {
                let mut d = d.borrow_mut();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            other => Err(format!("SETITEM on {}, not a dict", other.kind())),
        }
    }
}

fn args_of(args: &Value) -> Result<Vec<Value>, String> {
    match args {
        Value::Tuple(t) => Ok(t.to_vec()),
        other => Err(format!(
            "REDUCE arguments are {}, not a tuple",
            other.kind()
        )),
    }
}

/// The effect of calling one of the accepted globals, computed here.
fn reduce(f: &Value, args: &Value) -> Result<Value, String> {
    let Value::Global(c) = f else {
        return Err(format!("REDUCE calls {}, not a known global", f.kind()));
    };
    let args = args_of(args)?;
    match c {
        Callable::Reconstruct => match args.first() {
            Some(Value::Global(Callable::NdArray)) => {
                Ok(Value::Array(Rc::new(RefCell::new(Array::default()))))
            }
            _ => Err("_reconstruct of something other than numpy.ndarray".into()),
        },
        Callable::Dtype => {
            let descr = args
                .first()
                .and_then(Value::text)
                .ok_or("numpy.dtype without a descriptor string")?;
            Ok(Value::Dtype(Rc::new(RefCell::new(descr))))
        }
        Callable::Encode => {
            let (Some(Value::Str(text)), Some(enc)) = (args.first(), args.get(1)) else {
                return Err("_codecs.encode without (str, encoding)".into());
            };
            if enc.text().as_deref() != Some("latin1") {
                return Err("_codecs.encode with an encoding other than latin1".into());
            }
            let bytes = latin1(text)
                .ok_or("latin1 text that is not UTF-8 or has a character above U+00FF")?;
            Ok(Value::Bytes(Rc::new(bytes)))
        }
        Callable::NdArray => Err("numpy.ndarray is only read as _reconstruct's argument".into()),
    }
}

/// The latin-1 bytes of UTF-8 `text` whose characters are all below U+0100, or
/// None. Characters are ASCII bytes or `110000xx 10xxxxxx` pairs; the loop has no
/// data-dependent branches, since pixel bytes are above 127 about half the time.
fn latin1(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bad = 0u8;
    let mut i = 0;
    while i + 1 < text.len() {
        let (b, next) = (text[i], text[i + 1]);
        let lead = b >> 7;
        let pair = ((b & 0x03) << 6) | (next & 0x3F);
        out.push(if lead == 1 { pair } else { b });
        bad |= lead & (u8::from(b & 0xFE != 0xC2) | u8::from(next & 0xC0 != 0x80));
        i += 1 + lead as usize;
    }
    if let Some(&b) = text.get(i) {
        bad |= b >> 7;
        out.push(b);
    }
    (bad == 0).then_some(out)
}

/// BUILD: sets the state of an array (version, shape, dtype, fortran, raw bytes)
/// or a dtype (version, byte order, ...), as their `__setstate__` would.
fn build(target: &Value, state: &Value) -> Result<(), String> {
    let state = match state {
        Value::Tuple(t) => t,
        other => return Err(format!("BUILD state is {}, not a tuple", other.kind())),
    };
    match target {
        Value::Dtype(d) => {
            let order = state
                .get(1)
                .and_then(Value::text)
                .ok_or("dtype state without a byte order")?;
            let mut d = d.borrow_mut();
            *d = format!("{order}{d}");
            Ok(())
        }
        Value::Array(a) => {
            let [_, shape, dtype, fortran, raw] = state.as_slice() else {
                return Err(format!(
                    "array state has {} items, expected 5 (version, shape, dtype, fortran, data)",
                    state.len()
                ));
            };
            let shape = shape
                .items()
                .ok_or("array shape is not a tuple")?
                .iter()
                .map(|d| d.int().and_then(|d| usize::try_from(d).ok()))
                .collect::<Option<Vec<usize>>>()
                .ok_or("array shape has a non-integer or negative dimension")?;
            let Value::Dtype(dtype) = dtype else {
                return Err(format!("array dtype is {}", dtype.kind()));
            };
            let Value::Bytes(data) = raw else {
                return Err(format!(
                    "array data is {}, not bytes (object arrays are not read)",
                    raw.kind()
                ));
            };
            let descr = dtype.borrow().clone();
            let itemsize: usize = descr
                .trim_start_matches(['|', '<', '>', '='])
                .get(1..)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("unsupported dtype `{descr}`"))?;
            let count = shape.iter().try_fold(itemsize, |a, &d| a.checked_mul(d));
            if count != Some(data.len()) {
                return Err(format!(
                    "array data is {} bytes, but shape {shape:?} of `{descr}` needs {}",
                    data.len(),
                    count.map_or("more than 2^64".into(), |c| c.to_string())
                ));
            }
            *a.borrow_mut() = Array {
                descr,
                shape,
                fortran: fortran.int() == Some(1),
                data: data.clone(),
            };
            Ok(())
        }
        other => Err(format!("BUILD on {}", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_integers_are_twos_complement_little_endian() {
        // pickle.dumps([2**40, -2**31 - 1, -1], protocol=2)
        let bytes = b"\x80\x02]q\x00(\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x05\xff\xff\xff\x7f\xffJ\xff\xff\xff\xffe.";
        let items: Vec<i64> = load(bytes)
            .unwrap()
            .items()
            .unwrap()
            .iter()
            .map(|v| v.int().unwrap())
            .collect();
        assert_eq!(items, [1 << 40, -(1i64 << 31) - 1, -1]);
    }

    #[test]
    fn memo_entries_are_the_same_object_not_copies() {
        // ([b, b], b) with b = [5], b filled after it was memoised and fetched.
        let bytes = b"\x80\x02]q\x00(]q\x01h\x01eh\x01K\x05a\x86.";
        let pair = load(bytes).unwrap().items().unwrap();
        let outer = pair[0].items().unwrap();
        assert_eq!(outer.len(), 2);
        assert_eq!(
            outer[0].items().unwrap().len(),
            1,
            "the append shows through the memo"
        );
        assert_eq!(pair[1].items().unwrap()[0].int(), Some(5));
    }

    #[test]
    fn latin1_text_becomes_its_bytes() {
        let all: String = (0u8..=255).rev().map(char::from).collect();
        assert_eq!(latin1(all.as_bytes()), Some((0u8..=255).rev().collect()));
        assert_eq!(latin1("a\u{e9}".as_bytes()), Some(vec![b'a', 0xE9]));
        assert_eq!(latin1("\u{e9}a".as_bytes()), Some(vec![0xE9, b'a']));
        assert_eq!(latin1("\u{100}".as_bytes()), None);
        assert_eq!(latin1(&[0xC3]), None, "a lead byte without its pair");
        assert_eq!(latin1(&[0xC3, b'a']), None, "not a continuation byte");
    }

    #[test]
    fn deep_nesting_is_dropped_without_recursion() {
        let mut bytes = b"\x80\x02K\x00".to_vec();
        bytes.extend(std::iter::repeat_n(0x85u8, 1_000_000));
        bytes.push(b'.');
        let v = load(&bytes).unwrap();
        assert_eq!(v.kind(), "a tuple");
        drop(v);
    }

    #[test]
    fn marks_stacks_memo_and_unknown_opcodes_are_checked() {
        let err = load(b"\x80\x02]q\x00(]q\x01h\x01eh\x01K\x05a0.").unwrap_err();
        assert_eq!(
            err,
            "unsupported pickle opcode (opcode 0x30 '0' at byte 17)"
        );
        let err = load(b"\x80\x02]q\x00)b.").unwrap_err();
        assert!(err.contains("BUILD on a list"), "{err}");
        assert!(load(b"\x80\x02e.").unwrap_err().contains("no MARK"));
        assert!(load(b"\x80\x02.").unwrap_err().contains("stack underflow"));
        assert!(load(b"\x80\x02h\x07.")
            .unwrap_err()
            .contains("memo entry 7"));
        assert!(load(b"\x80\x02T\xff\xff\xff\xff")
            .unwrap_err()
            .contains("negative length -1"));
    }
}
