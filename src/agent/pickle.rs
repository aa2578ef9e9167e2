//! A safe reader of the pickle in a `torch.save` state dict (`data.pkl`).
//!
//! It interprets only the opcodes a state dict uses and builds data, never objects: the only
//! callables it accepts are `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and
//! `torch._utils._rebuild_parameter`, each mapped to a fixed data constructor, and the only other
//! globals are the `torch.*Storage` types. Anything else is an error that names it. Nothing is
//! ever imported or called, so a hostile file cannot run code; the sizes of strings, memo,
//! stack, nesting and tensors are capped so it cannot exhaust memory either.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// Storage element types of `torch.save` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn from_storage(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }
}

/// One tensor of the state dict: where its data is and how to read it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// `data/<storage_key>` inside the torch zip.
    pub storage_key: String,
    pub dtype: DType,
    /// Elements in the storage.
    pub storage_numel: u64,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

impl TensorRef {
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// Why a pickle was refused (the message gives the byte offset).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PickleError(pub String);

type Result<T> = std::result::Result<T, PickleError>;

/// Limits on what a state-dict pickle may contain.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_string: usize,
    pub max_stack: usize,
    pub max_memo: usize,
    pub max_nesting: usize,
    pub max_tensors: usize,
    /// Entries of one dict or list.
    pub max_container: usize,
    pub max_dims: usize,
    /// Elements of one tensor (and of its storage).
    pub max_numel: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_string: 1 << 16,
            max_stack: 1 << 16,
            max_memo: 1 << 20,
            max_nesting: 32,
            max_tensors: 1 << 14,
            max_container: 1 << 14,
            max_dims: 8,
            max_numel: 1 << 31,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(DType),
}

#[derive(Debug, Clone, PartialEq)]
enum V {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Rc<V>>),
    List(Vec<Rc<V>>),
    Dict(DictData),
    Global(Global),
    /// `('storage', type, key, location, numel)` after BINPERSID.
    Storage {
        dtype: DType,
        key: String,
        numel: u64,
    },
    Tensor(TensorRef),
}

/// A dict's entries in insertion order, with an index of its string keys (Python semantics:
/// a repeated key replaces the value in place).
#[derive(Debug, Clone, PartialEq, Default)]
struct DictData {
    entries: Vec<(Rc<V>, Rc<V>)>,
    index: HashMap<String, usize>,
}

impl DictData {
    fn insert(&mut self, k: Rc<V>, v: Rc<V>) {
        if let V::Str(s) = &*k {
            if let Some(&i) = self.index.get(s) {
                self.entries[i].1 = v;
                return;
            }
            self.index.insert(s.clone(), self.entries.len());
        }
        self.entries.push((k, v));
    }
}

enum Item {
    Mark,
    Val(Rc<V>, usize),
}

/// Parses `data.pkl` of a state dict into (name, tensor) pairs in file order.
pub fn read_state_dict(data: &[u8], limits: &Limits) -> Result<Vec<(String, TensorRef)>> {
    let mut m = Machine { data, pos: 0, stack: Vec::new(), memo: HashMap::new(), limits: *limits, tensors: 0 };
    let top = m.run()?;
    let entries = match &*top {
        V::Dict(d) => d.entries.clone(),
        other => {
            return Err(PickleError(format!(
                "expected the pickle to hold a dict of tensors (a state dict), found {}",
                type_name(other)
            )))
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let name = match &*k {
            V::Str(s) => s.clone(),
            other => return Err(PickleError(format!("state dict key is {}, expected a string", type_name(other)))),
        };
        match &*v {
            V::Tensor(t) => out.push((name, t.clone())),
            other => {
                return Err(PickleError(format!(
                    "state dict entry '{name}' is {}, expected a tensor",
                    type_name(other)
                )))
            }
        }
    }
    Ok(out)
}

fn type_name(v: &V) -> &'static str {
    match v {
        V::None => "None",
        V::Bool(_) => "a bool",
        V::Int(_) => "an int",
        V::Float(_) => "a float",
        V::Str(_) => "a string",
        V::Tuple(_) => "a tuple",
        V::List(_) => "a list",
        V::Dict(_) => "a dict",
        V::Global(_) => "a class or function",
        V::Storage { .. } => "a storage",
        V::Tensor(_) => "a tensor",
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u32, (Rc<V>, usize)>,
    limits: Limits,
    tensors: usize,
}

impl<'a> Machine<'a> {
    fn err<T>(&self, msg: impl fmt::Display) -> Result<T> {
        Err(PickleError(format!("pickle byte {}: {msg}", self.pos)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() - self.pos < n {
            return self.err("truncated pickle (ends inside an opcode)");
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let end = match rest.iter().take(self.limits.max_string + 1).position(|&b| b == b'\n') {
            Some(e) => e,
            None => return self.err("unterminated text line in GLOBAL"),
        };
        let s = match std::str::from_utf8(&rest[..end]) {
            Ok(s) => s.to_string(),
            Err(_) => return self.err("GLOBAL name is not UTF-8"),
        };
        self.pos += end + 1;
        Ok(s)
    }

    /// Pushes a scalar or an empty container.
    fn push(&mut self, v: V) -> Result<()> {
        self.push_rc(Rc::new(v), 0)
    }

    fn push_rc(&mut self, v: Rc<V>, depth: usize) -> Result<()> {
        if depth > self.limits.max_nesting {
            return self.err(format!("values nested deeper than {} levels (limit)", self.limits.max_nesting));
        }
        if self.stack.len() >= self.limits.max_stack {
            return self.err(format!("stack deeper than {} entries (limit)", self.limits.max_stack));
        }
        self.stack.push(Item::Val(v, depth));
        Ok(())
    }

    fn pop(&mut self) -> Result<(Rc<V>, usize)> {
        match self.stack.pop() {
            Some(Item::Val(v, d)) => Ok((v, d)),
            Some(Item::Mark) => self.err("unexpected MARK on the stack"),
            None => self.err("stack underflow"),
        }
    }

    /// Pops everything down to the last MARK.
    fn pop_mark(&mut self) -> Result<(Vec<Rc<V>>, usize)> {
        let mut items = Vec::new();
        let mut depth = 0;
        loop {
            match self.stack.pop() {
                Some(Item::Val(v, d)) => {
                    depth = depth.max(d);
                    items.push(v);
                }
                Some(Item::Mark) => break,
                None => return self.err("no MARK on the stack"),
            }
        }
        items.reverse();
        Ok((items, depth))
    }

    fn push_tuple(&mut self, items: Vec<Rc<V>>, depth: usize) -> Result<()> {
        self.push_rc(Rc::new(V::Tuple(items)), depth + 1)
    }

    fn pop_n(&mut self, n: usize) -> Result<(Vec<Rc<V>>, usize)> {
        let mut items = Vec::with_capacity(n);
        let mut depth = 0;
        for _ in 0..n {
            let (v, d) = self.pop()?;
            depth = depth.max(d);
            items.push(v);
        }
        items.reverse();
        Ok((items, depth))
    }

    fn memo_put(&mut self, idx: u32) -> Result<()> {
        let top = match self.stack.last() {
            Some(Item::Val(v, d)) => (v.clone(), *d),
            _ => return self.err("memo store with no value on the stack"),
        };
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&idx) {
            return self.err(format!("more than {} memo entries (limit)", self.limits.max_memo));
        }
        self.memo.insert(idx, top);
        Ok(())
    }

    fn memo_get(&mut self, idx: u32) -> Result<()> {
        match self.memo.get(&idx) {
            Some((v, d)) => {
                let (v, d) = (v.clone(), *d);
                self.push_rc(v, d)
            }
            None => self.err(format!("memo entry {idx} used before it was stored")),
        }
    }

    fn int_arg(&self, v: &V, what: &str) -> Result<u64> {
        match v {
            V::Int(i) if *i >= 0 => Ok(*i as u64),
            other => self.err(format!("{what}: expected a non-negative int, found {}", type_name(other))),
        }
    }

    fn int_tuple(&self, v: &V, what: &str) -> Result<Vec<u64>> {
        match v {
            V::Tuple(items) => items.iter().map(|i| self.int_arg(i, what)).collect(),
            other => self.err(format!("{what}: expected a tuple of ints, found {}", type_name(other))),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Result<Global> {
        Ok(match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch", storage) if DType::from_storage(storage).is_some() => {
                Global::Storage(DType::from_storage(storage).unwrap_or(DType::F32))
            }
            _ => {
                return self.err(format!(
                    "refusing pickle global '{module}.{name}': a state dict holds only tensors \
                     (allowed: collections.OrderedDict, torch._utils._rebuild_tensor_v2, \
                     torch._utils._rebuild_parameter, torch.*Storage); no code from the file is run"
                ))
            }
        })
    }

    fn reduce(&mut self, func: &V, args: &V) -> Result<V> {
        let args = match args {
            V::Tuple(a) => a,
            other => return self.err(format!("REDUCE arguments are {}, expected a tuple", type_name(other))),
        };
        match func {
            V::Global(Global::OrderedDict) => {
                if !args.is_empty() {
                    return self.err("OrderedDict with arguments is not supported");
                }
                Ok(V::Dict(DictData::default()))
            }
            V::Global(Global::RebuildTensorV2) => {
                if args.len() < 4 {
                    return self.err("_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
                }
                let (dtype, key, numel) = match &*args[0] {
                    V::Storage { dtype, key, numel } => (*dtype, key.clone(), *numel),
                    other => return self.err(format!("tensor storage is {}, expected a storage", type_name(other))),
                };
                let offset = self.int_arg(&args[1], "tensor offset")?;
                let shape = self.int_tuple(&args[2], "tensor size")?;
                let stride = self.int_tuple(&args[3], "tensor stride")?;
                self.check_tensor(&key, numel, offset, &shape, &stride)?;
                self.tensors += 1;
                if self.tensors > self.limits.max_tensors {
                    return self.err(format!("more than {} tensors (limit)", self.limits.max_tensors));
                }
                Ok(V::Tensor(TensorRef { storage_key: key, dtype, storage_numel: numel, offset, shape, stride }))
            }
            V::Global(Global::RebuildParameter) => match args.first().map(|a| &**a) {
                Some(V::Tensor(t)) => Ok(V::Tensor(t.clone())),
                _ => self.err("_rebuild_parameter needs a tensor"),
            },
            other => self.err(format!("REDUCE on {}, which is not an allowed callable", type_name(other))),
        }
    }

    fn check_tensor(&self, key: &str, numel: u64, offset: u64, shape: &[u64], stride: &[u64]) -> Result<()> {
        let l = &self.limits;
        if shape.len() != stride.len() {
            return self.err(format!(
                "tensor in storage '{key}': size has {} dims, stride {}",
                shape.len(),
                stride.len()
            ));
        }
        if shape.len() > l.max_dims {
            return self.err(format!("tensor in storage '{key}' has {} dims (limit {})", shape.len(), l.max_dims));
        }
        if numel > l.max_numel {
            return self.err(format!("storage '{key}' declares {numel} elements (limit {})", l.max_numel));
        }
        let mut elems: u64 = 1;
        for &s in shape {
            elems = match elems.checked_mul(s) {
                Some(e) if e <= l.max_numel => e,
                _ => {
                    return self.err(format!(
                        "tensor in storage '{key}' has shape {shape:?}, over the limit of {} elements",
                        l.max_numel
                    ))
                }
            };
        }
        if elems > 0 {
            // The last element addressed must lie inside the storage.
            let mut last = offset;
            for (&s, &st) in shape.iter().zip(stride) {
                last = match (s - 1).checked_mul(st).and_then(|x| x.checked_add(last)) {
                    Some(v) => v,
                    None => return self.err(format!("tensor in storage '{key}': stride overflow")),
                };
            }
            if last >= numel {
                return self.err(format!(
                    "tensor in storage '{key}' (offset {offset}, shape {shape:?}, stride {stride:?}) \
                     reaches element {last}, but the storage has {numel}"
                ));
            }
        }
        Ok(())
    }

    fn run(&mut self) -> Result<Rc<V>> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let p = self.u8()?;
                    if p > 5 {
                        return self.err(format!("pickle protocol {p} is not supported"));
                    }
                }
                0x95 => {
                    // FRAME (protocol 4): an 8-byte length, frames are not needed here
                    self.take(8)?;
                }
                b'.' => {
                    // STOP
                    let (v, _) = self.pop()?;
                    return Ok(v);
                }
                b'(' => {
                    if self.stack.len() >= self.limits.max_stack {
                        return self.err("stack too deep (limit)");
                    }
                    self.stack.push(Item::Mark)
                }
                b'N' => self.push(V::None)?,
                0x88 => self.push(V::Bool(true))?,
                0x89 => self.push(V::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(V::Int(i64::from(v)))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(V::Int(i64::from(v)))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(V::Int(i64::from(v)))?
                }
                0x8a => {
                    // LONG1
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return self.err("integer wider than 64 bits");
                    }
                    let mut v: i64 = 0;
                    for (i, &b) in bytes.iter().enumerate() {
                        v |= i64::from(b) << (8 * i);
                    }
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(V::Int(v))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(V::Float(f64::from_be_bytes(a)))?
                }
                b'X' | 0x8c => {
                    // BINUNICODE / SHORT_BINUNICODE
                    let n = if op == b'X' { self.u32()? as usize } else { self.u8()? as usize };
                    if n > self.limits.max_string {
                        return self.err(format!("string of {n} bytes (limit {})", self.limits.max_string));
                    }
                    let bytes = self.take(n)?;
                    let s = match std::str::from_utf8(bytes) {
                        Ok(s) => s.to_string(),
                        Err(_) => return self.err("string is not UTF-8"),
                    };
                    self.push(V::Str(s))?
                }
                b'c' => {
                    // GLOBAL module\nname\n
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(&module, &name)?;
                    self.push(V::Global(g))?
                }
                0x93 => {
                    // STACK_GLOBAL
                    let (name, _) = self.pop()?;
                    let (module, _) = self.pop()?;
                    match (&*module, &*name) {
                        (V::Str(m), V::Str(n)) => {
                            let g = self.global(m, n)?;
                            self.push(V::Global(g))?
                        }
                        _ => return self.err("STACK_GLOBAL needs two strings"),
                    }
                }
                b'q' => {
                    let i = u32::from(self.u8()?);
                    self.memo_put(i)?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?
                }
                0x94 => {
                    // MEMOIZE
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?
                }
                b'h' => {
                    let i = u32::from(self.u8()?);
                    self.memo_get(i)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?
                }
                b')' => self.push(V::Tuple(Vec::new()))?,
                b']' => self.push(V::List(Vec::new()))?,
                b'}' => self.push(V::Dict(DictData::default()))?,
                b't' => {
                    let (items, d) = self.pop_mark()?;
                    self.push_tuple(items, d)?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let (items, d) = self.pop_n(n)?;
                    self.push_tuple(items, d)?
                }
                b'a' | b'e' => {
                    // APPEND / APPENDS (a memoized list is copied, never shared and mutated)
                    let (items, d) = if op == b'a' { self.pop_n(1)? } else { self.pop_mark()? };
                    let (mut list, ld) = self.pop()?;
                    match Rc::make_mut(&mut list) {
                        V::List(l) => {
                            if l.len() + items.len() > self.limits.max_container {
                                return self.err(format!("list longer than {} (limit)", self.limits.max_container));
                            }
                            l.extend(items)
                        }
                        other => return self.err(format!("APPEND to {}", type_name(other))),
                    }
                    self.push_rc(list, ld.max(d + 1))?
                }
                b's' | b'u' => {
                    // SETITEM / SETITEMS
                    let (items, d) = if op == b's' { self.pop_n(2)? } else { self.pop_mark()? };
                    if items.len() % 2 != 0 {
                        return self.err("SETITEMS with an odd number of items");
                    }
                    let (mut dict, dd) = self.pop()?;
                    let max = self.limits.max_container;
                    match Rc::make_mut(&mut dict) {
                        V::Dict(data) => {
                            let mut it = items.into_iter();
                            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                                data.insert(k, v);
                            }
                            if data.entries.len() > max {
                                return self.err(format!("dict with more than {max} entries (limit)"));
                            }
                        }
                        other => return self.err(format!("SETITEMS on {}", type_name(other))),
                    }
                    self.push_rc(dict, dd.max(d + 1))?
                }
                b'R' => {
                    let (args, da) = self.pop()?;
                    let (func, _) = self.pop()?;
                    let v = self.reduce(&func, &args)?;
                    self.push_rc(Rc::new(v), da)?
                }
                b'Q' => {
                    // BINPERSID: ('storage', StorageType, key, location, numel)
                    let (pid, _) = self.pop()?;
                    let items = match &*pid {
                        V::Tuple(items) if items.len() == 5 => items.clone(),
                        other => {
                            return self.err(format!(
                                "persistent id is {}, expected ('storage', type, key, location, numel)",
                                type_name(other)
                            ))
                        }
                    };
                    match (&*items[0], &*items[1], &*items[2]) {
                        (V::Str(tag), V::Global(Global::Storage(dtype)), V::Str(key)) if tag == "storage" => {
                            let numel = self.int_arg(&items[4], "storage size")?;
                            if numel > self.limits.max_numel {
                                return self.err(format!(
                                    "storage '{key}' declares {numel} elements (limit {})",
                                    self.limits.max_numel
                                ));
                            }
                            let v = V::Storage { dtype: *dtype, key: key.clone(), numel };
                            self.push(v)?
                        }
                        _ => return self.err("persistent id is not a torch storage reference"),
                    }
                }
                b'b' => {
                    // BUILD: state for the object below; only the OrderedDict's _metadata, ignored.
                    let _state = self.pop()?;
                    match self.stack.last() {
                        Some(Item::Val(_, _)) => {}
                        _ => return self.err("BUILD with nothing to build"),
                    }
                }
                other => {
                    return self.err(format!(
                        "unsupported pickle opcode 0x{other:02x} (only the opcodes of a torch state dict are read)"
                    ))
                }
            }
        }
    }
}
