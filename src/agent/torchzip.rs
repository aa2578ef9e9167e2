//! Reading SB3's `agent.zip` and the `torch.save` zip inside it (`policy.pth`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use zip::ZipArchive;

use super::error::{AgentError, Result};
use super::statedict::{self, DType, TensorRef};

/// Size limits for agent files. Real SB3 agents are far below them.
#[derive(Debug, Clone, Copy)]
pub struct AgentLimits {
    /// Largest `policy.pth` (uncompressed), and largest total of the tensors read from it.
    pub max_policy_bytes: u64,
    /// Largest `data` JSON member and `data.pkl`.
    pub max_meta_bytes: u64,
    /// Most members in either zip.
    pub max_members: usize,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits { max_policy_bytes: 4 << 30, max_meta_bytes: 64 << 20, max_members: 1 << 16 }
    }
}

/// A parameter tensor of the network read (the Q-network, policy or critic of the head asked
/// for), as float32, contiguous, row-major.
#[derive(Debug, Clone)]
pub struct Param {
    /// As `q_net.named_parameters()` names it (`features_extractor.mlp.0.weight`, `q_net.0.bias`).
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Param {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A window of a file: a stored (uncompressed) zip member read in place, without copying.
struct Window {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len - self.pos;
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let got = self.file.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for Window {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.len as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if new < 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before start"));
        }
        self.pos = (new as u64).min(self.len);
        Ok(self.pos)
    }
}

pub trait ReadSeek: Read + Seek {}
impl<T: Read + Seek> ReadSeek for T {}

fn open_zip<R: Read + Seek>(reader: R, what: &str, limits: &AgentLimits) -> Result<ZipArchive<R>> {
    let archive = ZipArchive::new(reader).map_err(|source| AgentError::Zip {
        what: what.to_string(),
        context: " is not a readable zip archive".into(),
        source,
    })?;
    if archive.len() > limits.max_members {
        return Err(AgentError::Limit(format!("{what} has {} members (limit {})", archive.len(), limits.max_members)));
    }
    Ok(archive)
}

/// Reads a member fully, refusing more than `max` bytes (declared or actual).
fn read_member<R: Read + Seek>(archive: &mut ZipArchive<R>, name: &str, max: u64, what: &str) -> Result<Vec<u8>> {
    let mut member = archive.by_name(name).map_err(|source| AgentError::Zip {
        what: what.to_string(),
        context: format!(": cannot open member '{name}'"),
        source,
    })?;
    let declared = member.size();
    if declared > max {
        return Err(AgentError::Limit(format!(
            "{what}: member '{name}' declares {declared} bytes, over the limit of {max}"
        )));
    }
    // Reserve at most 64 MiB up front: a declared size is only a claim.
    let mut out = Vec::with_capacity(declared.min(64 << 20) as usize);
    (&mut member).take(max + 1).read_to_end(&mut out).map_err(|source| AgentError::Truncated {
        what: what.to_string(),
        member: name.to_string(),
        source,
    })?;
    if out.len() as u64 > max {
        return Err(AgentError::Limit(format!(
            "{what}: member '{name}' inflates past the limit of {max} bytes (a zip bomb?)"
        )));
    }
    if out.len() as u64 != declared {
        return Err(AgentError::Malformed(format!(
            "{what}: member '{name}' holds {} bytes but declares {declared}",
            out.len()
        )));
    }
    Ok(out)
}

/// The two members of `agent.zip` that matter: `data` (text) and `policy.pth` (its state
/// dict's entries read, its tensors read on demand).
pub struct AgentZip {
    pub data: Vec<u8>,
    pub sb3_version: Option<String>,
    pub policy: TorchZip<Box<dyn ReadSeek>>,
}

/// Reads `agent.zip`: the `data` member and the state dict of `policy.pth`.
pub fn read_agent_zip(path: &Path, limits: &AgentLimits) -> Result<AgentZip> {
    let shown = path.display().to_string();
    let file = open(path)?;
    let mut outer = open_zip(file, &shown, limits)?;
    let names: Vec<String> = outer.file_names().map(str::to_string).collect();
    if !names.iter().any(|n| n == "data") || !names.iter().any(|n| n == "policy.pth") {
        if names.iter().any(|n| n.ends_with("/data.pkl")) {
            // A cut-off agent.zip: the zip reader finds the end record of the policy.pth
            // stored inside it.
            return Err(AgentError::Malformed(format!(
                "{shown} is truncated or corrupt: its zip directory is missing (only the policy.pth stored inside it \
                 was found)"
            )));
        }
        return Err(AgentError::Malformed(format!(
            "{shown} is not a Stable-Baselines3 save: expected members 'data' and 'policy.pth', found {}",
            list_names(&names)
        )));
    }
    let data = read_member(&mut outer, "data", limits.max_meta_bytes, &shown)?;
    let sb3_version = read_member(&mut outer, "_stable_baselines3_version", 256, &shown)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.trim().to_string());

    // policy.pth: read in place when stored (SB3's default), else inflate into memory.
    let what = format!("{shown}: policy.pth");
    let (stored, start, size) = {
        let m = outer.by_name("policy.pth").map_err(|source| AgentError::Zip {
            what: what.clone(),
            context: String::new(),
            source,
        })?;
        (m.compression() == zip::CompressionMethod::Stored, m.data_start(), m.size())
    };
    if size > limits.max_policy_bytes {
        return Err(AgentError::Limit(format!(
            "{what} is {size} bytes, over the limit of {} (raise it with --max-agent-mb)",
            limits.max_policy_bytes
        )));
    }
    let inner: Box<dyn ReadSeek> = if stored {
        let file = open(path)?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if start + size > file_len {
            return Err(AgentError::Malformed(format!("{what} runs past the end of the file (truncated agent zip)")));
        }
        Box::new(Window { file, start, len: size, pos: 0 })
    } else {
        Box::new(io::Cursor::new(read_member(&mut outer, "policy.pth", limits.max_policy_bytes, &shown)?))
    };
    let policy = open_torch_zip(inner, &what, limits)?;
    Ok(AgentZip { data, sb3_version, policy })
}

/// The first 16 hex digits of the SHA-256 of the zip's `policy.pth` bytes: the network's
/// identity (two saves of the same weights, RL Zoo's `best_model.zip` beside the checkpoint it
/// copies say, have the same). The member is streamed through the hash, never held whole.
pub fn policy_digest(path: &Path, limits: &AgentLimits) -> Result<String> {
    use sha2::{Digest, Sha256};
    let shown = path.display().to_string();
    let mut outer = open_zip(open(path)?, &shown, limits)?;
    let what = format!("{shown}: policy.pth");
    let mut member = outer.by_name("policy.pth").map_err(|source| AgentError::Zip {
        what: what.clone(),
        context: String::new(),
        source,
    })?;
    if member.size() > limits.max_policy_bytes {
        return Err(AgentError::Limit(format!(
            "{what} is {} bytes, over the limit of {} (raise it with --max-agent-mb)",
            member.size(),
            limits.max_policy_bytes
        )));
    }
    let mut hasher = Sha256::new();
    io::copy(&mut (&mut member).take(limits.max_policy_bytes), &mut hasher)
        .map_err(|source| AgentError::Truncated { what: shown.clone(), member: "policy.pth".into(), source })?;
    let hex: String = hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(hex)
}

/// The state dict's tensor names only (no tensor data is read).
pub fn read_param_names(path: &Path, limits: &AgentLimits) -> Result<Vec<String>> {
    let shown = path.display().to_string();
    let file = open(path)?;
    let mut outer = open_zip(file, &shown, limits)?;
    let pth = read_member(&mut outer, "policy.pth", limits.max_policy_bytes, &shown)?;
    let mut zip = ZipArchive::new(io::Cursor::new(pth)).map_err(|source| AgentError::Zip {
        what: format!("{shown}: policy.pth"),
        context: String::new(),
        source,
    })?;
    let pkl = zip
        .file_names()
        .filter(|n| n.ends_with("data.pkl") && n.matches('/').count() == 1)
        .min()
        .map(str::to_string)
        .ok_or_else(|| AgentError::Malformed(format!("{shown}: policy.pth has no data.pkl")))?;
    let bytes = read_member(&mut zip, &pkl, limits.max_meta_bytes, &shown)?;
    let entries = statedict::read_state_dict(&bytes, &statedict::TensorLimits::default())
        .map_err(|source| AgentError::Pickle { what: format!("{shown}: policy.pth: {pkl}"), source })?;
    Ok(entries.into_iter().map(|(k, _)| k).collect())
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| AgentError::Io { action: "open agent file", path: path.to_path_buf(), source })
}

fn list_names(names: &[String]) -> String {
    let mut shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
    if names.len() > 12 {
        shown.push("...");
    }
    if shown.is_empty() {
        "no members".to_string()
    } else {
        shown.join(", ")
    }
}

/// A `torch.save` zip with its state dict read: every entry's name and tensor reference.
pub struct TorchZip<R> {
    zip: ZipArchive<R>,
    /// The folder holding data.pkl (`archive/` for SB3).
    prefix: String,
    pub entries: Vec<(String, TensorRef)>,
    what: String,
}

/// Opens a `torch.save` zip and reads its state dict (`data.pkl`); no tensor data is read.
pub fn open_torch_zip<R: Read + Seek>(reader: R, what: &str, limits: &AgentLimits) -> Result<TorchZip<R>> {
    let mut zip = ZipArchive::new(reader).map_err(|source| AgentError::Zip {
        what: what.to_string(),
        context: " is not a torch.save zip archive (is it an old-format or non-PyTorch file?)".into(),
        source,
    })?;
    if zip.len() > limits.max_members {
        return Err(AgentError::Limit(format!("{what} has {} members (limit {})", zip.len(), limits.max_members)));
    }
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    // The folder holding data.pkl (`archive/` for SB3; other writers use other names).
    let pkl =
        names.iter().filter(|n| n.ends_with("data.pkl") && n.matches('/').count() == 1).min().cloned().ok_or_else(
            || AgentError::Malformed(format!("{what} has no '<folder>/data.pkl'; members: {}", list_names(&names))),
        )?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let pickle_bytes = read_member(&mut zip, &pkl, limits.max_meta_bytes, what)?;
    let entries = statedict::read_state_dict(&pickle_bytes, &statedict::TensorLimits::default())
        .map_err(|source| AgentError::Pickle { what: format!("{what}: {pkl}"), source })?;
    Ok(TorchZip { zip, prefix, entries, what: what.to_string() })
}

impl<R: Read + Seek> TorchZip<R> {
    /// The entries' names.
    pub fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Reads the tensors `wanted` names (state-dict key, reported name), in that order, as
    /// float32, contiguous, row-major. An empty selection is an error naming `empty_why`.
    pub fn read(&mut self, wanted: &[(String, String)], limits: &AgentLimits, empty_why: &str) -> Result<Vec<Param>> {
        let what = self.what.clone();
        if wanted.is_empty() {
            return Err(AgentError::Malformed(format!("{what} has no {empty_why}")));
        }
        let mut params = Vec::new();
        let mut total: u64 = 0;
        for (key, name) in wanted {
            let Some((_, tensor)) = self.entries.iter().find(|(k, _)| k == key).cloned() else {
                return Err(AgentError::Malformed(format!("{what} has no tensor '{key}'")));
            };
            if !tensor.dtype.is_float() {
                return Err(AgentError::Malformed(format!(
                    "{what}: tensor '{key}' has dtype {:?}; parameters must be floating point",
                    tensor.dtype
                )));
            }
            let bytes = tensor.storage_numel * tensor.dtype.size() as u64;
            total += bytes;
            if total > limits.max_policy_bytes {
                return Err(AgentError::Limit(format!(
                    "{what}: tensors add up to more than {} bytes (raise the limit with --max-agent-mb)",
                    limits.max_policy_bytes
                )));
            }
            let member = format!("{}data/{}", self.prefix, tensor.storage_key);
            if member.contains("..") || tensor.storage_key.contains('/') {
                return Err(AgentError::Malformed(format!(
                    "{what}: tensor '{key}' names storage '{}', which is not a plain key",
                    tensor.storage_key
                )));
            }
            let raw = read_member(&mut self.zip, &member, bytes, &what)?;
            if raw.len() as u64 != bytes {
                return Err(AgentError::Malformed(format!(
                    "{what}: storage '{member}' of tensor '{key}' holds {} bytes, expected {bytes} ({} x {:?})",
                    raw.len(),
                    tensor.storage_numel,
                    tensor.dtype
                )));
            }
            let data = gather(&raw, &tensor);
            params.push(Param { name: name.clone(), shape: tensor.shape.iter().map(|&s| s as usize).collect(), data });
        }
        Ok(params)
    }
}

fn element(raw: &[u8], dtype: DType, i: usize) -> f32 {
    let s = dtype.size();
    let b = &raw[i * s..(i + 1) * s];
    match dtype {
        DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        DType::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
        DType::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
        DType::BF16 => f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16),
        DType::I64 => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
        DType::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
        DType::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
        DType::I8 => b[0] as i8 as f32,
        DType::U8 => b[0] as f32,
        DType::Bool => (b[0] != 0) as u8 as f32,
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal: normalise
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// The tensor's elements in row-major order, honouring offset and strides (checked by the
/// pickle reader to stay inside the storage).
fn gather(raw: &[u8], t: &TensorRef) -> Vec<f32> {
    let numel = t.numel() as usize;
    let mut out = Vec::with_capacity(numel);
    if numel == 0 {
        return out;
    }
    let shape: Vec<usize> = t.shape.iter().map(|&s| s as usize).collect();
    let stride: Vec<usize> = t.stride.iter().map(|&s| s as usize).collect();
    let mut contiguous = true;
    let mut expect = 1usize;
    for d in (0..shape.len()).rev() {
        if shape[d] != 1 && stride[d] != expect {
            contiguous = false;
        }
        expect *= shape[d];
    }
    let offset = t.offset as usize;
    if contiguous {
        if t.dtype == DType::F32 {
            out.extend(
                raw[offset * 4..(offset + numel) * 4]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        } else {
            out.extend((0..numel).map(|i| element(raw, t.dtype, offset + i)));
        }
        return out;
    }
    let mut index = vec![0usize; shape.len()];
    for _ in 0..numel {
        let pos = offset + index.iter().zip(&stride).map(|(i, s)| i * s).sum::<usize>();
        out.push(element(raw, t.dtype, pos));
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    }

    #[test]
    fn strided_gather_transposes() {
        let raw: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let t = TensorRef {
            storage_key: "0".into(),
            dtype: DType::F32,
            storage_numel: 6,
            offset: 0,
            shape: vec![3, 2],
            stride: vec![1, 3],
        };
        assert_eq!(gather(&raw, &t), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
