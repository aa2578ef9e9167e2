//! A `torch.save` state dict's `data.pkl`, read with the one pickle reader and interpreted as
//! data: an (ordered) dict of parameter name -> tensor reference. The only globals allowed are
//! `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`
//! and the `torch.*Storage` types; each tensor's size, stride and storage are checked before
//! anything is allocated.

use super::pickle::{self, AllowList, Pickle, PickleError, Pickled};

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

/// Limits on the tensors a state dict may declare (the pickle's own are `pickle::Limits`).
#[derive(Debug, Clone, Copy)]
pub struct TensorLimits {
    pub pickle: pickle::Limits,
    pub max_tensors: usize,
    pub max_dims: usize,
    /// Elements of one tensor (and of its storage).
    pub max_numel: u64,
}

impl Default for TensorLimits {
    fn default() -> Self {
        TensorLimits {
            pickle: pickle::Limits { max_bytes: 64 << 20, max_container: 1 << 14, ..pickle::Limits::default() },
            max_tensors: 1 << 14,
            max_dims: 8,
            max_numel: 1 << 31,
        }
    }
}

fn state_dict_global(module: &str, name: &str) -> bool {
    matches!(
        (module, name),
        ("collections", "OrderedDict")
            | ("torch._utils", "_rebuild_tensor_v2")
            | ("torch._utils", "_rebuild_parameter")
    ) || (module == "torch" && DType::from_storage(name).is_some())
}

/// What a state dict's pickle may name.
pub const STATE_DICT: AllowList = AllowList {
    allows: state_dict_global,
    why: "a state dict holds only tensors (allowed: collections.OrderedDict, torch._utils._rebuild_tensor_v2, \
          torch._utils._rebuild_parameter, torch.*Storage)",
};

/// A refusal that is about the data rather than a byte of the pickle.
fn refuse<T>(detail: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError::data(detail))
}

/// Parses `data.pkl` of a state dict into (name, tensor) pairs in file order.
pub fn read_state_dict(data: &[u8], limits: &TensorLimits) -> Result<Vec<(String, TensorRef)>, PickleError> {
    let p = pickle::read(data, &limits.pickle, &STATE_DICT)?;
    let Pickled::Dict(entries) = p.get(p.root) else {
        return refuse(format!(
            "expected the pickle to hold a dict of tensors (a state dict), found {}",
            type_name(p.get(p.root))
        ));
    };
    if entries.len() > limits.max_tensors {
        return refuse(format!("more than {} tensors (limit)", limits.max_tensors));
    }
    let mut out: Vec<(String, TensorRef)> = Vec::with_capacity(entries.len());
    for &(k, v) in entries {
        let Pickled::Str(name) = p.get(k) else {
            return refuse(format!("state dict key is {}, expected a string", type_name(p.get(k))));
        };
        let t =
            tensor(&p, v, limits).map_err(|e| PickleError { at: e.at, detail: format!("'{name}': {}", e.detail) })?;
        // Python dict semantics: a repeated key keeps its place and takes the new value.
        match out.iter().position(|(n, _)| n == name) {
            Some(i) => out[i].1 = t,
            None => out.push((name.clone(), t)),
        }
    }
    Ok(out)
}

fn type_name(v: &Pickled) -> &'static str {
    match v {
        Pickled::None => "None",
        Pickled::Bool(_) => "a bool",
        Pickled::Int(_) | Pickled::BigInt(_) => "an int",
        Pickled::Float(_) => "a float",
        Pickled::Str(_) => "a string",
        Pickled::Bytes(_) => "bytes",
        Pickled::Tuple(_) => "a tuple",
        Pickled::List(_) => "a list",
        Pickled::Dict(_) => "a dict",
        Pickled::Global { .. } => "a class or function",
        Pickled::Call { .. } => "an object",
        Pickled::PersistentId(_) => "a storage",
        Pickled::Mark => "a MARK",
    }
}

/// A recorded `_rebuild_tensor_v2(storage, offset, size, stride, ...)`, possibly wrapped in
/// `_rebuild_parameter(tensor, ...)`.
fn tensor(p: &Pickle, i: usize, limits: &TensorLimits) -> Result<TensorRef, PickleError> {
    let Some((module, name, args)) = p.call(i) else {
        return refuse(format!("{}, expected a tensor", type_name(p.get(i))));
    };
    match (module, name) {
        ("torch._utils", "_rebuild_parameter") => match args.first() {
            Some(&t) if p.call(t).is_some_and(|(_, n, _)| n == "_rebuild_tensor_v2") => tensor(p, t, limits),
            _ => refuse("_rebuild_parameter needs a tensor"),
        },
        ("torch._utils", "_rebuild_tensor_v2") => {
            if args.len() < 4 {
                return refuse("_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
            }
            let (dtype, key, numel) = storage(p, args[0], limits)?;
            let offset = int(p, args[1], "tensor offset")?;
            let shape = ints(p, args[2], "tensor size")?;
            let stride = ints(p, args[3], "tensor stride")?;
            check_tensor(&key, numel, offset, &shape, &stride, limits)?;
            Ok(TensorRef { storage_key: key, dtype, storage_numel: numel, offset, shape, stride })
        }
        _ => refuse(format!("a call of {module}.{name}, expected a tensor")),
    }
}

/// A persistent id `('storage', torch.<T>Storage, key, location, numel)`.
fn storage(p: &Pickle, i: usize, limits: &TensorLimits) -> Result<(DType, String, u64), PickleError> {
    let Pickled::PersistentId(id) = p.get(i) else {
        return refuse(format!("tensor storage is {}, expected a storage", type_name(p.get(i))));
    };
    let items = match p.get(*id) {
        Pickled::Tuple(items) if items.len() == 5 => items,
        other => {
            return refuse(format!(
                "persistent id is {}, expected ('storage', type, key, location, numel)",
                type_name(other)
            ))
        }
    };
    match (p.get(items[0]), p.get(items[1]), p.get(items[2])) {
        (Pickled::Str(tag), Pickled::Global { module, name }, Pickled::Str(key))
            if tag == "storage" && module == "torch" =>
        {
            let dtype = DType::from_storage(name)
                .ok_or_else(|| PickleError::data(format!("storage type torch.{name} is not a tensor storage")))?;
            let numel = int(p, items[4], "storage size")?;
            if numel > limits.max_numel {
                return refuse(format!("storage '{key}' declares {numel} elements (limit {})", limits.max_numel));
            }
            Ok((dtype, key.clone(), numel))
        }
        _ => refuse("persistent id is not a torch storage reference"),
    }
}

fn int(p: &Pickle, i: usize, what: &str) -> Result<u64, PickleError> {
    match p.get(i) {
        Pickled::Int(v) if *v >= 0 => Ok(*v as u64),
        other => refuse(format!("{what}: expected a non-negative int, found {}", type_name(other))),
    }
}

fn ints(p: &Pickle, i: usize, what: &str) -> Result<Vec<u64>, PickleError> {
    match p.get(i) {
        Pickled::Tuple(items) => items.iter().map(|&x| int(p, x, what)).collect(),
        other => refuse(format!("{what}: expected a tuple of ints, found {}", type_name(other))),
    }
}

fn check_tensor(
    key: &str,
    numel: u64,
    offset: u64,
    shape: &[u64],
    stride: &[u64],
    l: &TensorLimits,
) -> Result<(), PickleError> {
    if shape.len() != stride.len() {
        return refuse(format!("tensor in storage '{key}': size has {} dims, stride {}", shape.len(), stride.len()));
    }
    if shape.len() > l.max_dims {
        return refuse(format!("tensor in storage '{key}' has {} dims (limit {})", shape.len(), l.max_dims));
    }
    let mut elems: u64 = 1;
    for &s in shape {
        elems = match elems.checked_mul(s) {
            Some(e) if e <= l.max_numel => e,
            _ => {
                return refuse(format!(
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
                None => return refuse(format!("tensor in storage '{key}': stride overflow")),
            };
        }
        if last >= numel {
            return refuse(format!(
                "tensor in storage '{key}' (offset {offset}, shape {shape:?}, stride {stride:?}) reaches element \
                 {last}, but the storage has {numel}"
            ));
        }
    }
    Ok(())
}
