//! The one pickle reader: Python's pickled files (a `torch.save` state dict's `data.pkl`, a
//! VecNormalize save) read as data, never run.
//!
//! Python's unpickler imports and calls the functions a pickle names; this one only records
//! the calls. Globals must be on the caller's allow-list (an [`AllowList`] per kind of file),
//! and `REDUCE`, `NEWOBJ` and `BUILD` on them build inert values ([`Pickled::Call`]); the caller
//! interprets the recorded values (`statedict.rs`, `vecnorm.rs`). Sizes, nesting, stack and
//! memo are capped, so a hostile file can neither run code nor exhaust memory.

use std::fmt;

/// An unpickled value. Containers refer to other values by index into `Pickle::values`
/// (pickles share and mutate objects through the memo).
#[derive(Debug, Clone, PartialEq)]
pub enum Pickled {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64 (LONG1/LONG4 bytes, little-endian two's complement).
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<usize>),
    List(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Global {
        module: String,
        name: String,
    },
    /// `func(*args)` as REDUCE or NEWOBJ would have called it, and the BUILD state given to the
    /// result (never called).
    Call {
        func: usize,
        args: usize,
        state: Option<usize>,
    },
    /// A persistent id (BINPERSID): torch's reference to a storage, the id value's index.
    PersistentId(usize),
    /// The MARK sentinel on the stack.
    Mark,
}

/// Why a pickle was refused: what, and where when it is a byte of the file (a refusal of the
/// data it holds, a tensor reaching past its storage say, has no one byte).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct PickleError {
    pub at: Option<usize>,
    pub detail: String,
}

impl PickleError {
    /// A refusal of what the pickle holds, not of one of its bytes.
    pub fn data(detail: impl Into<String>) -> PickleError {
        PickleError { at: None, detail: detail.into() }
    }
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "pickle byte {at}: {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

/// Caps on what a pickle may contain.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole pickle, and any one string or bytes value.
    pub max_bytes: usize,
    pub max_values: usize,
    pub max_stack: usize,
    pub max_memo: usize,
    /// Items of one tuple, list or dict.
    pub max_container: usize,
    /// Containers inside containers.
    pub max_nesting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 << 20,
            max_values: 1 << 20,
            max_stack: 1 << 16,
            max_memo: 1 << 20,
            max_container: 1 << 20,
            max_nesting: 32,
        }
    }
}

/// The globals a kind of file may name, and what to say when it names another.
#[derive(Clone, Copy)]
pub struct AllowList {
    pub allows: fn(&str, &str) -> bool,
    /// Completes "refusing pickle global 'm.n': ...".
    pub why: &'static str,
}

#[derive(Debug)]
pub struct Pickle {
    pub values: Vec<Pickled>,
    pub root: usize,
}

impl Pickle {
    pub fn get(&self, i: usize) -> &Pickled {
        &self.values[i]
    }

    /// A dict's entry by string key.
    pub fn dict_get(&self, dict: usize, key: &str) -> Option<usize> {
        match self.get(dict) {
            Pickled::Dict(items) => {
                items.iter().find(|(k, _)| matches!(self.get(*k), Pickled::Str(s) if s == key)).map(|(_, v)| *v)
            }
            _ => None,
        }
    }

    /// For a `Call` of an allowed global: (module.name, its BUILD state).
    pub fn object(&self, i: usize) -> Option<(String, Option<usize>)> {
        match self.get(i) {
            Pickled::Call { func, state, .. } => match self.get(*func) {
                Pickled::Global { module, name } => Some((format!("{module}.{name}"), *state)),
                _ => None,
            },
            _ => None,
        }
    }

    /// For a `Call`: the global called and its argument values.
    pub fn call(&self, i: usize) -> Option<(&str, &str, &[usize])> {
        let Pickled::Call { func, args, .. } = self.get(i) else { return None };
        let Pickled::Global { module, name } = self.get(*func) else { return None };
        let Pickled::Tuple(a) = self.get(*args) else { return None };
        Some((module, name, a))
    }
}

/// Reads a pickle (protocols 2 to 5), refusing any global `allowed` does not list.
pub fn read(data: &[u8], limits: &Limits, allowed: &AllowList) -> Result<Pickle, PickleError> {
    if data.len() > limits.max_bytes {
        return Err(PickleError::data(format!("{} bytes, over the limit of {}", data.len(), limits.max_bytes)));
    }
    let mut vm = Vm {
        data,
        pos: 0,
        values: Vec::new(),
        depth: Vec::new(),
        stack: Vec::new(),
        memo: Vec::new(),
        limits: *limits,
        allowed,
    };
    let root = vm.run()?;
    Ok(Pickle { values: vm.values, root })
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    values: Vec<Pickled>,
    /// Nesting depth of each value (0 for scalars).
    depth: Vec<usize>,
    stack: Vec<usize>,
    memo: Vec<Option<usize>>,
    limits: Limits,
    allowed: &'a AllowList,
}

impl fmt::Debug for Vm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vm at {}", self.pos)
    }
}

impl Vm<'_> {
    fn err<T>(&self, msg: impl fmt::Display) -> Result<T, PickleError> {
        Err(PickleError { at: Some(self.pos), detail: msg.to_string() })
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        if self.data.len() - self.pos < n {
            return self.err("truncated pickle (ends inside an opcode)");
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    }

    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let v = self.uint(n)?;
        if v > self.limits.max_bytes as u64 {
            return self.err(format!("a length of {v} bytes (limit {})", self.limits.max_bytes));
        }
        Ok(v as usize)
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.err("truncated pickle (unterminated text line)");
        };
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    /// Stores a value nested `depth` levels deep.
    fn alloc(&mut self, v: Pickled, depth: usize) -> Result<usize, PickleError> {
        if self.values.len() >= self.limits.max_values {
            return self.err(format!("more than {} values (limit)", self.limits.max_values));
        }
        if depth > self.limits.max_nesting {
            return self.err(format!("values nested deeper than {} levels (limit)", self.limits.max_nesting));
        }
        self.values.push(v);
        self.depth.push(depth);
        Ok(self.values.len() - 1)
    }

    fn push(&mut self, v: Pickled) -> Result<(), PickleError> {
        let i = self.alloc(v, 0)?;
        self.push_ref(i)
    }

    /// A container of `items`, one level deeper than the deepest of them.
    fn push_container(&mut self, v: Pickled, items: &[usize]) -> Result<(), PickleError> {
        let depth = 1 + items.iter().map(|&i| self.depth[i]).max().unwrap_or(0);
        let i = self.alloc(v, depth)?;
        self.push_ref(i)
    }

    fn push_ref(&mut self, i: usize) -> Result<(), PickleError> {
        if self.stack.len() >= self.limits.max_stack {
            return self.err(format!("stack too deep (limit {} entries)", self.limits.max_stack));
        }
        self.stack.push(i);
        Ok(())
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(i) if self.values[i] == Pickled::Mark => self.err("a MARK where a value was expected"),
            Some(i) => Ok(i),
            None => self.err("stack underflow"),
        }
    }

    fn top(&self) -> Result<usize, PickleError> {
        match self.stack.last() {
            Some(&i) => Ok(i),
            None => self.err("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let Some(m) = self.stack.iter().rposition(|&i| self.values[i] == Pickled::Mark) else {
            return self.err("no MARK on the stack");
        };
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        if items.len() > self.limits.max_container {
            return self.err(format!("a container of more than {} items (limit)", self.limits.max_container));
        }
        Ok(items)
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<usize>, PickleError> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        Ok(items)
    }

    fn memo_put(&mut self, idx: usize) -> Result<(), PickleError> {
        if idx >= self.limits.max_memo {
            return self.err(format!("memo index {idx} (limit {})", self.limits.max_memo));
        }
        let top = self.top()?;
        if self.memo.len() <= idx {
            self.memo.resize(idx + 1, None);
        }
        self.memo[idx] = Some(top);
        Ok(())
    }

    fn memo_get(&mut self, idx: usize) -> Result<(), PickleError> {
        match self.memo.get(idx).copied().flatten() {
            Some(i) => self.push_ref(i),
            None => self.err(format!("memo entry {idx} used before it was stored")),
        }
    }

    fn global(&mut self, module: String, name: String) -> Result<(), PickleError> {
        if !(self.allowed.allows)(&module, &name) {
            return self.err(format!(
                "refusing pickle global '{module}.{name}': {}; no code from the file is run",
                self.allowed.why
            ));
        }
        self.push(Pickled::Global { module, name })
    }

    fn call(&mut self) -> Result<(), PickleError> {
        let args = self.pop()?;
        let func = self.pop()?;
        if !matches!(self.values[func], Pickled::Global { .. }) {
            return self.err("a call of something that is not an allowed global");
        }
        if !matches!(self.values[args], Pickled::Tuple(_)) {
            return self.err("call arguments that are not a tuple");
        }
        // `OrderedDict()` is pickled as a call without arguments followed by SETITEMS: it
        // becomes an empty dict that the items are added to.
        if matches!(&self.values[func], Pickled::Global { module, name } if module == "collections" && name == "OrderedDict")
        {
            if !matches!(&self.values[args], Pickled::Tuple(a) if a.is_empty()) {
                return self.err("collections.OrderedDict called with arguments (expected none)");
            }
            return self.push(Pickled::Dict(Vec::new()));
        }
        self.push_container(Pickled::Call { func, args, state: None }, &[args])
    }

    /// Adds `items` to the list or dict at `target` (pairs for a dict).
    fn extend(&mut self, target: usize, items: Vec<usize>) -> Result<(), PickleError> {
        let deepest = items.iter().map(|&i| self.depth[i]).max().unwrap_or(0);
        let max = self.limits.max_container;
        match &mut self.values[target] {
            Pickled::List(l) if l.len() + items.len() <= max => l.extend(items),
            Pickled::Dict(d) if items.len() % 2 == 0 && d.len() + items.len() / 2 <= max => {
                d.extend(items.chunks(2).map(|c| (c[0], c[1])))
            }
            Pickled::Dict(_) if items.len() % 2 != 0 => return self.err("SETITEMS with an odd number of items"),
            Pickled::List(_) | Pickled::Dict(_) => {
                return self.err(format!("a container of more than {max} items (limit)"))
            }
            _ => return self.err("APPEND or SETITEM on something that is not a list or dict"),
        }
        if deepest + 1 > self.limits.max_nesting {
            return self.err(format!("values nested deeper than {} levels (limit)", self.limits.max_nesting));
        }
        self.depth[target] = self.depth[target].max(deepest + 1);
        Ok(())
    }

    fn run(&mut self) -> Result<usize, PickleError> {
        loop {
            let op = self.take(1)?[0];
            if op == b'.' {
                return self.pop();
            }
            self.step(op)?;
        }
    }

    /// One opcode (other than STOP).
    fn step(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            0x80 => {
                let proto = self.take(1)?[0];
                if !(2..=5).contains(&proto) {
                    return self.err(format!("pickle protocol {proto} is not supported (2 to 5 are read)"));
                }
            }
            0x95 => {
                self.uint(8)?; // FRAME: a length hint
            }
            b'(' => self.push(Pickled::Mark)?,
            b'N' => self.push(Pickled::None)?,
            0x88 => self.push(Pickled::Bool(true))?,
            0x89 => self.push(Pickled::Bool(false))?,
            b'J' | b'K' | b'M' | 0x8a | 0x8b | b'G' => self.number(op)?,
            0x8c | b'X' | 0x8d | b'C' | b'B' | 0x8e | 0x96 => self.text_or_bytes(op)?,
            b'}' => self.push(Pickled::Dict(Vec::new()))?,
            b']' => self.push(Pickled::List(Vec::new()))?,
            b')' => self.push(Pickled::Tuple(Vec::new()))?,
            b't' | b'l' | b'd' | 0x85..=0x87 => self.container(op)?,
            b'a' | b'e' | b's' | b'u' => {
                let items = match op {
                    b'a' => self.pop_n(1)?,
                    b's' => self.pop_n(2)?,
                    _ => self.pop_mark()?,
                };
                let target = self.top()?;
                self.extend(target, items)?
            }
            0x94 | b'q' | b'r' | b'h' | b'j' => self.memo_op(op)?,
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(module, name)?
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (&self.values[module], &self.values[name]) {
                    (Pickled::Str(m), Pickled::Str(n)) => {
                        let (m, n) = (m.clone(), n.clone());
                        self.global(m, n)?
                    }
                    _ => return self.err("STACK_GLOBAL of something that is not text"),
                }
            }
            b'R' | 0x81 => self.call()?,
            b'Q' => {
                let id = self.pop()?;
                self.push_container(Pickled::PersistentId(id), &[id])?
            }
            b'b' => self.build()?,
            other => {
                return self.err(format!(
                    "unsupported pickle opcode 0x{other:02x} (not one of the opcodes this kind of file uses)"
                ))
            }
        }
        Ok(())
    }

    fn number(&mut self, op: u8) -> Result<(), PickleError> {
        let v = match op {
            b'J' => Pickled::Int((self.uint(4)? as u32 as i32).into()),
            b'K' => Pickled::Int(self.uint(1)? as i64),
            b'M' => Pickled::Int(self.uint(2)? as i64),
            b'G' => {
                let b = self.take(8)?;
                Pickled::Float(f64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
            }
            _ => {
                // LONG1 / LONG4: little-endian two's complement
                let n = if op == 0x8a { self.uint(1)? as usize } else { self.len(4)? };
                let bytes = self.take(n)?.to_vec();
                if n <= 8 {
                    let mut b = [if bytes.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 }; 8];
                    b[..n].copy_from_slice(&bytes);
                    Pickled::Int(i64::from_le_bytes(b))
                } else {
                    Pickled::BigInt(bytes)
                }
            }
        };
        self.push(v)
    }

    fn text_or_bytes(&mut self, op: u8) -> Result<(), PickleError> {
        let n = match op {
            0x8c | b'C' => self.uint(1)? as usize,
            b'X' | b'B' => self.len(4)?,
            _ => self.len(8)?,
        };
        let raw = self.take(n)?;
        let v = if matches!(op, 0x8c | b'X' | 0x8d) {
            match std::str::from_utf8(raw) {
                Ok(s) => Pickled::Str(s.to_string()),
                Err(_) => return self.err("text that is not UTF-8"),
            }
        } else {
            Pickled::Bytes(raw.to_vec())
        };
        self.push(v)
    }

    fn container(&mut self, op: u8) -> Result<(), PickleError> {
        let items = match op {
            0x85..=0x87 => self.pop_n((op - 0x84) as usize)?,
            _ => self.pop_mark()?,
        };
        match op {
            b'l' => self.push_container(Pickled::List(Vec::new()), &[])?,
            b'd' => self.push_container(Pickled::Dict(Vec::new()), &[])?,
            _ => return self.push_container(Pickled::Tuple(items.clone()), &items),
        }
        let target = self.top()?;
        self.extend(target, items)
    }

    fn memo_op(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            0x94 => {
                let idx = self.memo.len();
                self.memo_put(idx)
            }
            b'q' => {
                let idx = self.uint(1)? as usize;
                self.memo_put(idx)
            }
            b'r' => {
                let idx = self.uint(4)? as usize;
                self.memo_put(idx)
            }
            b'h' => {
                let idx = self.uint(1)? as usize;
                self.memo_get(idx)
            }
            _ => {
                let idx = self.uint(4)? as usize;
                self.memo_get(idx)
            }
        }
    }

    /// BUILD: the state of a recorded call is kept; a dict's (an OrderedDict's `_metadata`)
    /// is dropped.
    fn build(&mut self) -> Result<(), PickleError> {
        let state = self.pop()?;
        let obj = self.top()?;
        let deeper = self.depth[state] + 1;
        match &mut self.values[obj] {
            Pickled::Call { state: s @ None, .. } => *s = Some(state),
            Pickled::Dict(_) => return Ok(()),
            _ => return self.err("BUILD on something that is not a recorded call"),
        }
        self.depth[obj] = self.depth[obj].max(deeper);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY_COLLECTIONS: AllowList =
        AllowList { allows: |m, n| m == "collections" && n == "OrderedDict", why: "only OrderedDict here" };

    #[test]
    fn ordered_dict_becomes_a_plain_dict_and_takes_no_arguments() {
        // OrderedDict() then SETITEMS {'a': 1}, as pickle writes a gymnasium Dict's spaces.
        let ok = b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00aK\x01u.";
        let p = read(ok, &Limits::default(), &ANY_COLLECTIONS).unwrap();
        let a = p.dict_get(p.root, "a").unwrap();
        assert!(matches!(p.get(a), Pickled::Int(1)));
        // OrderedDict(x): a call with arguments is refused, not made.
        let bad = b"\x80\x02ccollections\nOrderedDict\nK\x01\x85R.";
        let e = read(bad, &Limits::default(), &ANY_COLLECTIONS).unwrap_err();
        assert!(e.detail.contains("OrderedDict called with arguments"), "{e}");
        // Other globals stay refused, with the allow-list's reason.
        let e = read(b"\x80\x02ccollections\ndefaultdict\n)R.", &Limits::default(), &ANY_COLLECTIONS).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pickle byte 27: refusing pickle global 'collections.defaultdict': only OrderedDict here; no code \
             from the file is run"
        );
    }

    #[test]
    fn nesting_stack_and_truncation_are_capped() {
        let mut deep = b"\x80\x02K\x01".to_vec();
        deep.extend(std::iter::repeat_n(0x85u8, 100));
        deep.push(b'.');
        let e = read(&deep, &Limits::default(), &ANY_COLLECTIONS).unwrap_err();
        assert!(e.detail.contains("nested deeper than 32 levels (limit)"), "{e}");
        // Nesting through appends counts too.
        let mut lists = b"\x80\x02".to_vec();
        lists.extend(std::iter::repeat_n(b']', 40));
        lists.extend(std::iter::repeat_n(b'a', 39));
        lists.push(b'.');
        let e = read(&lists, &Limits::default(), &ANY_COLLECTIONS).unwrap_err();
        assert!(e.detail.contains("nested deeper than 32 levels"), "{e}");
        let mut marks = b"\x80\x02".to_vec();
        marks.extend(std::iter::repeat_n(b'(', 70_000));
        let e = read(&marks, &Limits::default(), &ANY_COLLECTIONS).unwrap_err();
        assert!(e.detail.contains("stack too deep"), "{e}");
        let e = read(b"\x80\x02X\x05\x00\x00\x00ab", &Limits::default(), &ANY_COLLECTIONS).unwrap_err();
        assert!(e.detail.contains("truncated pickle"), "{e}");
    }
}
