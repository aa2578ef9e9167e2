//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod screen;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    if name == "demo" {
        root().join("assets/demo")
    } else {
        root().join("tests/fixtures").join(name)
    }
}

pub fn reference_dir(name: &str) -> PathBuf {
    if name == "demo" {
        root().join("tests/fixtures/demo_reference")
    } else {
        fixture(name).join("reference")
    }
}

/// A float32 or float64 .npy array: (shape, values as f64).
pub fn read_npy(path: &Path) -> (Vec<usize>, Vec<f64>) {
    npy_from_bytes(&std::fs::read(path).unwrap(), &path.display().to_string())
}

/// Every array of a .npz (numpy's zip of .npy files), by name (without ".npy").
pub fn read_npz(path: &Path) -> std::collections::HashMap<String, (Vec<usize>, Vec<f64>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = std::collections::HashMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let name = f.name().trim_end_matches(".npy").to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        out.insert(name.clone(), npy_from_bytes(&bytes, &name));
    }
    out
}

fn npy_from_bytes(bytes: &[u8], what: &str) -> (Vec<usize>, Vec<f64>) {
    let path = what;
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path} is not .npy");
    let (header_len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    let shape_text = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> =
        shape_text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    assert!(header.contains("'fortran_order': False"));
    let data = &bytes[start + header_len..];
    let values = if header.contains("'<i8'") {
        data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64).collect()
    } else if header.contains("'<f4'") {
        data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64).collect()
    } else if header.contains("'<f8'") {
        data.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
    } else {
        panic!("unsupported npy dtype in {header}")
    };
    (shape, values)
}

/// Tolerance of float32 results against PyTorch, relative to the tensor's scale.
///
/// libtorch picks its float32 kernels by CPU (oneDNN convolutions, MKL matrix products: SSE4.1,
/// AVX2, AVX-512 each sum products in another order), so the last bits of a gradient differ
/// between machines. An element much smaller than its tensor's largest one can then differ by
/// far more than 1e-5 of itself while the tensor agrees to 1e-5 of its scale; an element-wise
/// relative tolerance fails on some CPUs and not on others. So every comparison allows
/// `RTOL * max|want|` over the tensor, plus `FLOOR` for tensors that are all (near) zero.
pub const RTOL: f64 = 1e-5;
pub const FLOOR: f64 = 1e-12;

/// |got - want| <= RTOL * max|want| + FLOOR for every element (see `RTOL`), with a message
/// naming the worst element.
pub fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_close_scaled(what, got, want, 0.0)
}

/// `assert_close` with the scale at least `scale` (for results that are differences of larger
/// terms, whose float32 error is relative to the terms).
pub fn assert_close_scaled(what: &str, got: &[f64], want: &[f64], scale: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().filter(|w| w.is_finite()).fold(scale, |m, w| m.max(w.abs()));
    let tol = RTOL * scale + FLOOR;
    let mut worst: Option<(f64, usize)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = if g.is_nan() || w.is_nan() {
            if g.is_nan() && w.is_nan() {
                0.0
            } else {
                f64::INFINITY
            }
        } else if g == w {
            0.0
        } else {
            (g - w).abs()
        };
        if err > tol && worst.is_none_or(|(e, _)| err > e) {
            worst = Some((err, i));
        }
    }
    if let Some((err, i)) = worst {
        panic!(
            "{what}: element {i}: got {} want {} (|diff| {err:e} > {tol:e} = {RTOL:e} x max|want| {scale:e} + {FLOOR:e})",
            got[i], want[i]
        );
    }
}

/// A nested JSON list of numbers, flattened in row-major order.
pub fn flatten_numbers(v: &saliency::json::Value, out: &mut Vec<f64>) {
    match v {
        saliency::json::Value::Array(a) => a.iter().for_each(|x| flatten_numbers(x, out)),
        other => out.push(other.as_f64().unwrap_or_else(|| panic!("not a number: {other:?}"))),
    }
}

/// Reads a JSON file whole (test files only).
pub fn read_json(path: &Path) -> saliency::json::Value {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    saliency::json::reader::read_value_from(std::io::BufReader::new(f), &path.display().to_string()).unwrap()
}

/// A list of `{"name": ..., "shape": [...]}` entries (a reference's or an index's parameters)
/// as (name, shape) pairs, in order.
pub fn named_shapes(list: &saliency::json::Value) -> Vec<(String, Vec<usize>)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let shape =
                p.get("shape").unwrap().as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as usize).collect();
            (p.get("name").unwrap().as_str().unwrap().to_string(), shape)
        })
        .collect()
}

/// Copies an agent zip, replacing (or, with None, dropping) members; `extra` adds members.
pub fn rewrite_zip(src: &Path, dest: &Path, mut edit: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(dest).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let name = f.name().to_string();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        if let Some(new) = edit(&name, data) {
            out.start_file(name, opts).unwrap();
            out.write_all(&new).unwrap();
        }
    }
    out.finish().unwrap();
}

/// Rewrites `policy.pth` inside an agent zip with `edit` applied to the inner zip's members.
pub fn rewrite_policy(src: &Path, dest: &Path, mut edit: impl FnMut(&str, Vec<u8>) -> Option<Vec<u8>>) {
    rewrite_zip(src, dest, |name, data| {
        if name != "policy.pth" {
            return Some(data);
        }
        let tmp_in = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp_in.path(), &data).unwrap();
        let tmp_out = tempfile::NamedTempFile::new().unwrap();
        rewrite_zip(tmp_in.path(), tmp_out.path(), &mut edit);
        Some(std::fs::read(tmp_out.path()).unwrap())
    });
}

/// A copy of a fixture's agent directory in a temp dir (so tests can break pieces of it).
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.file_name().unwrap() == "reference" || p.file_name().unwrap() == "gradient_analysis" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// One tensor of a hand-made state dict: (name, storage key, storage elements, shape, stride).
pub type TensorSpec<'a> = (&'a str, &'a str, u64, &'a [u64], &'a [u64]);

/// A minimal torch state-dict pickle (protocol 2) with float32 tensors. Written by hand, as the
/// tests need broken variants.
pub fn state_dict_pickle(entries: &[TensorSpec]) -> Vec<u8> {
    fn int(out: &mut Vec<u8>, v: u64) {
        if v < 256 {
            out.extend_from_slice(&[b'K', v as u8]);
        } else if v < (1 << 31) {
            out.push(b'J');
            out.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&[0x8a, 8]);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn s(out: &mut Vec<u8>, t: &str) {
        out.push(b'X');
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    fn tuple(out: &mut Vec<u8>, vals: &[u64]) {
        out.push(b'(');
        for &v in vals {
            int(out, v);
        }
        out.push(b't');
    }
    let mut p = vec![0x80, 2];
    p.extend_from_slice(b"ccollections\nOrderedDict\n)R(");
    for (name, key, numel, shape, stride) in entries {
        s(&mut p, name);
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        s(&mut p, "storage");
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        s(&mut p, key);
        s(&mut p, "cpu");
        int(&mut p, *numel);
        p.extend_from_slice(b"tQ");
        int(&mut p, 0);
        tuple(&mut p, shape);
        tuple(&mut p, stride);
        p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend_from_slice(b"u.");
    p
}

/// A policy.pth (zip) holding `pickle` as archive/data.pkl and the given storages.
pub fn policy_pth(pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    out.start_file("archive/data.pkl", opts).unwrap();
    out.write_all(pickle).unwrap();
    for (key, bytes) in storages {
        out.start_file(format!("archive/data/{key}"), opts).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A copy of a fixture's agent directory holding only its first `n` inputs.
pub fn first_inputs(name: &str, n: usize) -> tempfile::TempDir {
    let dir = copy_fixture(name);
    let path = saliency::pipeline::clean_inputs_path(dir.path());
    let all = read_json(&path);
    let mut w = saliency::json::PyJsonWriter::new(std::fs::File::create(&path).unwrap());
    w.begin_object().unwrap();
    for (id, entry) in all.as_object().unwrap().iter().take(n) {
        w.key(id).unwrap();
        w.begin_object().unwrap();
        w.key("input").unwrap();
        let mut flat = Vec::new();
        flatten_numbers(entry.get("input").unwrap(), &mut flat);
        w.nested(&[flat.len()], |i| flat[i]).unwrap();
        w.end_object().unwrap();
    }
    w.end_object().unwrap();
    w.finish().unwrap();
    dir
}

/// Every file under `dir` (recursively).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A folder of one agent of each algorithm (`DIR/mixed/<name>/`, their own inputs and
/// patching results, without the PyTorch references).
pub fn mixed_folder(dir: &Path) -> PathBuf {
    let mixed = dir.join("mixed");
    for name in ["cartpole", "qrdqn", "ppo_cartpole", "a2c_acrobot", "maskable_ppo"] {
        let src = fixture(name);
        for e in walk(&src) {
            let rel = e.strip_prefix(&src).unwrap();
            if rel.starts_with("reference") {
                continue;
            }
            let dest = mixed.join(name).join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&e, dest).unwrap();
        }
    }
    mixed
}
