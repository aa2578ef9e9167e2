//! A pickle reader for saved Python objects that runs nothing (docs/agent-format.md,
//! "VecNormalize"). Python's unpickler calls the functions a pickle names; this one only
//! records the calls: globals must be on an allow-list, and `REDUCE`, `NEWOBJ` and `BUILD`
//! on them build inert values (`Value::Call`). Sizes, nesting, stack and memo are capped.

use std::fmt;

/// An unpickled value. Containers refer to other values by index into `Pickle::values`
/// (pickles share and mutate objects through the memo).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
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
    /// The MARK sentinel on the stack.
    Mark,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PickleError(pub String);

/// Caps on what a pickle may contain.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_values: usize,
    pub max_stack: usize,
    pub max_memo: usize,
    pub max_container: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 << 20,
            max_values: 1 << 20,
            max_stack: 1 << 16,
            max_memo: 1 << 20,
            max_container: 1 << 20,
        }
    }
}

/// The globals a VecNormalize save uses (stable-baselines3 2.x, gymnasium, numpy 1.x and 2.x).
pub fn vec_normalize_global(module: &str, name: &str) -> bool {
    let numpy_core = matches!(module, "numpy._core.multiarray" | "numpy.core.multiarray");
    match (module, name) {
        ("stable_baselines3.common.vec_env.vec_normalize", "VecNormalize")
        | ("stable_baselines3.common.running_mean_std", "RunningMeanStd")
        | ("numpy", "dtype")
        | ("numpy", "ndarray")
        | ("numpy.random._pickle", "__generator_ctor")
        | ("numpy.random._pickle", "__bit_generator_ctor")
        | ("numpy.random._pcg64", "PCG64")
        | ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence")
        | ("numpy.random.bit_generator", "SeedSequence")
        // (a Dict space's sub-spaces; built as a plain dict, see `Vm::call`)
        | ("collections", "OrderedDict") => true,
        (_, "_reconstruct" | "scalar") if numpy_core => true,
        (m, n) if m.starts_with("gymnasium.spaces.") => {
            matches!(n, "Box" | "Discrete" | "Dict" | "MultiDiscrete" | "MultiBinary" | "Tuple")
        }
        _ => false,
    }
}

#[derive(Debug)]
pub struct Pickle {
    pub values: Vec<Value>,
    pub root: usize,
}

impl Pickle {
    pub fn get(&self, i: usize) -> &Value {
        &self.values[i]
    }

    /// A dict's entry by string key.
    pub fn dict_get(&self, dict: usize, key: &str) -> Option<usize> {
        match self.get(dict) {
            Value::Dict(items) => {
                items.iter().find(|(k, _)| matches!(self.get(*k), Value::Str(s) if s == key)).map(|(_, v)| *v)
            }
            _ => None,
        }
    }

    /// For a `Call` of an allowed global: (module.name, its BUILD state).
    pub fn object(&self, i: usize) -> Option<(String, Option<usize>)> {
        match self.get(i) {
            Value::Call { func, state, .. } => match self.get(*func) {
                Value::Global { module, name } => Some((format!("{module}.{name}"), *state)),
                _ => None,
            },
            _ => None,
        }
    }
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    values: Vec<Value>,
    stack: Vec<usize>,
    memo: Vec<Option<usize>>,
    limits: Limits,
    allowed: &'a dyn Fn(&str, &str) -> bool,
}

impl fmt::Debug for Vm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vm at {}", self.pos)
    }
}

/// Reads a pickle (protocols 2 to 5), refusing any global `allowed` rejects.
pub fn read(data: &[u8], limits: &Limits, allowed: &dyn Fn(&str, &str) -> bool) -> Result<Pickle, PickleError> {
    if data.len() > limits.max_bytes {
        return Err(PickleError(format!("{} bytes, over the limit of {}", data.len(), limits.max_bytes)));
    }
    let mut vm = Vm { data, pos: 0, values: Vec::new(), stack: Vec::new(), memo: Vec::new(), limits: *limits, allowed };
    let root = vm.run()?;
    Ok(Pickle { values: vm.values, root })
}

impl Vm<'_> {
    fn err<T>(&self, msg: impl fmt::Display) -> Result<T, PickleError> {
        Err(PickleError(format!("at byte {}: {msg}", self.pos)))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        if self.data.len() - self.pos < n {
            return self.err(format!("truncated: {n} more bytes expected"));
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
        let Some(end) = rest.iter().position(|&b| b == b'\n') else { return self.err("unterminated text line") };
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn alloc(&mut self, v: Value) -> Result<usize, PickleError> {
        if self.values.len() >= self.limits.max_values {
            return self.err(format!("more than {} values (limit)", self.limits.max_values));
        }
        self.values.push(v);
        Ok(self.values.len() - 1)
    }

    fn push(&mut self, v: Value) -> Result<(), PickleError> {
        let i = self.alloc(v)?;
        self.push_ref(i)
    }

    fn push_ref(&mut self, i: usize) -> Result<(), PickleError> {
        if self.stack.len() >= self.limits.max_stack {
            return self.err(format!("stack deeper than {} (limit)", self.limits.max_stack));
        }
        self.stack.push(i);
        Ok(())
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(i) if self.values[i] == Value::Mark => self.err("a MARK where a value was expected"),
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
        let Some(m) = self.stack.iter().rposition(|&i| self.values[i] == Value::Mark) else {
            return self.err("no MARK on the stack");
        };
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        if items.len() > self.limits.max_container {
            return self.err(format!("a container of more than {} items (limit)", self.limits.max_container));
        }
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
            None => self.err(format!("memo entry {idx} is not set")),
        }
    }

    fn global(&mut self, module: String, name: String) -> Result<(), PickleError> {
        if !(self.allowed)(&module, &name) {
            return self.err(format!("refused global {module}.{name}: not one this file may use (nothing was run)"));
        }
        self.push(Value::Global { module, name })
    }

    fn call(&mut self) -> Result<(), PickleError> {
        let args = self.pop()?;
        let func = self.pop()?;
        if !matches!(self.values[func], Value::Global { .. }) {
            return self.err("a call of something that is not an allowed global");
        }
        if !matches!(self.values[args], Value::Tuple(_)) {
            return self.err("call arguments that are not a tuple");
        }
        // `OrderedDict()` is pickled as a call without arguments followed by SETITEMS: it
        // becomes an empty dict that the items are added to.
        if matches!(&self.values[func], Value::Global { module, name } if module == "collections" && name == "OrderedDict")
        {
            if !matches!(&self.values[args], Value::Tuple(a) if a.is_empty()) {
                return self.err("collections.OrderedDict called with arguments (expected none)");
            }
            return self.push(Value::Dict(Vec::new()));
        }
        self.push(Value::Call { func, args, state: None })
    }

    fn add_to_list(&mut self, list: usize, items: Vec<usize>) -> Result<(), PickleError> {
        match &mut self.values[list] {
            Value::List(l) if l.len() + items.len() <= self.limits.max_container => {
                l.extend(items);
                Ok(())
            }
            Value::List(_) => self.err("a list over the size limit"),
            _ => self.err("APPEND to something that is not a list"),
        }
    }

    fn add_to_dict(&mut self, dict: usize, items: Vec<usize>) -> Result<(), PickleError> {
        if items.len() % 2 != 0 {
            return self.err("SETITEMS with an odd number of items");
        }
        let pairs: Vec<(usize, usize)> = items.chunks(2).map(|c| (c[0], c[1])).collect();
        let max = self.limits.max_container;
        match &mut self.values[dict] {
            Value::Dict(d) if d.len() + pairs.len() <= max => {
                d.extend(pairs);
                Ok(())
            }
            Value::Dict(_) => self.err("a dict over the size limit"),
            _ => self.err("SETITEM on something that is not a dict"),
        }
    }

    fn run(&mut self) -> Result<usize, PickleError> {
        loop {
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    let proto = self.take(1)?[0];
                    if !(2..=5).contains(&proto) {
                        return self.err(format!("pickle protocol {proto} (2 to 5 are read)"));
                    }
                }
                0x95 => {
                    self.uint(8)?; // FRAME: a length hint
                }
                b'.' => return self.pop(),
                b'(' => self.push(Value::Mark)?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.push(Value::Int(v.into()))?
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.push(Value::Int(v as i64))?
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.push(Value::Int(v as i64))?
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.uint(1)? as usize } else { self.len(4)? };
                    let bytes = self.take(n)?.to_vec();
                    let v = if n <= 8 {
                        let mut b = [if bytes.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 }; 8];
                        b[..n].copy_from_slice(&bytes);
                        Value::Int(i64::from_le_bytes(b))
                    } else {
                        Value::BigInt(bytes)
                    };
                    self.push(v)?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                    self.push(Value::Float(v))?
                }
                0x8c | b'X' | 0x8d => {
                    let n = match op {
                        0x8c => self.uint(1)? as usize,
                        b'X' => self.len(4)?,
                        _ => self.len(8)?,
                    };
                    let s = match std::str::from_utf8(self.take(n)?) {
                        Ok(s) => s.to_string(),
                        Err(_) => return self.err("text that is not UTF-8"),
                    };
                    self.push(Value::Str(s))?
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let n = match op {
                        b'C' => self.uint(1)? as usize,
                        b'B' => self.len(4)?,
                        _ => self.len(8)?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b))?
                }
                b'}' => self.push(Value::Dict(Vec::new()))?,
                b']' => self.push(Value::List(Vec::new()))?,
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))?
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items))?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let i = self.alloc(Value::Dict(Vec::new()))?;
                    self.add_to_dict(i, items)?;
                    self.push_ref(i)?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items))?
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.add_to_list(list, vec![item])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.add_to_list(list, items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?;
                    self.add_to_dict(d, vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let d = self.top()?;
                    self.add_to_dict(d, items)?
                }
                0x94 => {
                    let idx = self.memo.len();
                    self.memo_put(idx)?
                }
                b'q' => {
                    let idx = self.uint(1)? as usize;
                    self.memo_put(idx)?
                }
                b'r' => {
                    let idx = self.uint(4)? as usize;
                    self.memo_put(idx)?
                }
                b'h' => {
                    let idx = self.uint(1)? as usize;
                    self.memo_get(idx)?
                }
                b'j' => {
                    let idx = self.uint(4)? as usize;
                    self.memo_get(idx)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&self.values[module], &self.values[name]) {
                        (Value::Str(m), Value::Str(n)) => {
                            let (m, n) = (m.clone(), n.clone());
                            self.global(m, n)?
                        }
                        _ => return self.err("STACK_GLOBAL of something that is not text"),
                    }
                }
                b'R' | 0x81 => self.call()?,
                b'b' => {
                    let state = self.pop()?;
                    let obj = self.top()?;
                    match &mut self.values[obj] {
                        Value::Call { state: s @ None, .. } => *s = Some(state),
                        _ => return self.err("BUILD on something that is not a recorded call"),
                    }
                }
                other => {
                    return self
                        .err(format!("opcode 0x{other:02x} is not read (this file is not of the expected form)"))
                }
            }
        }
    }
}

/// A numpy array recorded as `_reconstruct(ndarray, (0,), b'b')` + BUILD
/// `(1, shape, dtype, is_fortran, raw bytes)`: its values as f64 (float64 or float32 data).
pub fn ndarray_f64(p: &Pickle, i: usize) -> Result<(Vec<usize>, Vec<f64>), String> {
    let (class, state) = p.object(i).ok_or("not a numpy array")?;
    if !class.ends_with("._reconstruct") {
        return Err(format!("{class}, not a numpy array"));
    }
    let state = state.ok_or("a numpy array without its data")?;
    let Value::Tuple(items) = p.get(state) else { return Err("a numpy array's state is not a tuple".into()) };
    if items.len() != 5 {
        return Err(format!("a numpy array's state has {} items, expected 5", items.len()));
    }
    let shape: Vec<usize> = match p.get(items[1]) {
        Value::Tuple(dims) => dims
            .iter()
            .map(|&d| match p.get(d) {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err("a numpy array's shape holds a non-integer".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("a numpy array's shape is not a tuple".into()),
    };
    if matches!(p.get(items[3]), Value::Bool(true)) {
        return Err("a Fortran-ordered numpy array".into());
    }
    let (code, order) = dtype(p, items[2])?;
    let Value::Bytes(raw) = p.get(items[4]) else { return Err("a numpy array's data is not bytes".into()) };
    let n: usize = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("a numpy array's shape overflows")?;
    if order == ">" {
        return Err("a big-endian numpy array".into());
    }
    let values: Vec<f64> = match code.as_str() {
        "f8" if raw.len() == 8 * n => {
            raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect()
        }
        "f4" if raw.len() == 4 * n => {
            raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as f64).collect()
        }
        "f8" | "f4" => return Err(format!("a numpy array of shape {shape:?} with {} bytes of {code} data", raw.len())),
        other => return Err(format!("a numpy array of dtype {other}, expected float64 or float32")),
    };
    Ok((shape, values))
}

/// A recorded `numpy.dtype(code, ...)` with its BUILD state: (code, byte order).
fn dtype(p: &Pickle, i: usize) -> Result<(String, String), String> {
    let Value::Call { func, args, state } = p.get(i) else { return Err("a dtype that is not numpy.dtype(...)".into()) };
    if !matches!(p.get(*func), Value::Global { module, name } if module == "numpy" && name == "dtype") {
        return Err("a dtype that is not numpy.dtype(...)".into());
    }
    let code = match p.get(*args) {
        Value::Tuple(a) => match a.first().map(|&x| p.get(x)) {
            Some(Value::Str(s)) => s.clone(),
            _ => return Err("numpy.dtype without a type code".into()),
        },
        _ => return Err("numpy.dtype without arguments".into()),
    };
    let order = match state.map(|s| p.get(s)) {
        Some(Value::Tuple(st)) => match st.get(1).map(|&x| p.get(x)) {
            Some(Value::Str(o)) => o.clone(),
            _ => "<".into(),
        },
        _ => "<".into(),
    };
    Ok((code, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_dict_becomes_a_plain_dict_and_takes_no_arguments() {
        // OrderedDict() then SETITEMS {'a': 1}, as pickle writes a gymnasium Dict's spaces.
        let ok = b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00aK\x01u.";
        let p = read(ok, &Limits::default(), &vec_normalize_global).unwrap();
        let a = p.dict_get(p.root, "a").unwrap();
        assert!(matches!(p.get(a), Value::Int(1)));
        // OrderedDict(x): a call with arguments is refused, not made.
        let bad = b"\x80\x02ccollections\nOrderedDict\nK\x01\x85R.";
        let e = read(bad, &Limits::default(), &vec_normalize_global).unwrap_err();
        assert!(e.0.contains("OrderedDict called with arguments"), "{}", e.0);
        // Other collections globals stay refused.
        let e = read(b"\x80\x02ccollections\ndefaultdict\n)R.", &Limits::default(), &vec_normalize_global).unwrap_err();
        assert!(e.0.contains("refused global collections.defaultdict"), "{}", e.0);
    }
}
