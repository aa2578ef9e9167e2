//! `saliency validate` against PyTorch and scipy (scripts/reference/make_validate_reference.py)
//! on a DQN MLP, a DQN CNN and a PPO agent: the stratified sample element for element, each
//! sampled weight's damage and flip rate (every input through SB3's own network with that one
//! weight zeroed), the measures at the sampled weights, and the correlations: ours on the
//! reference's own numbers equal scipy's, and ours on our numbers are within rounding of them.

mod common;

use common::*;
use saliency::json::Value;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

fn check(name: &str) {
    let reference = read_json(&reference_dir(name).join("validation.json"));
    let get = |k: &str| reference.get(k).unwrap_or_else(|| panic!("{name}: no {k}"));
    let (n, m) = (get("sample").as_i64().unwrap(), get("inputs").as_i64().unwrap());
    let out = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("saliency"))
        .args(["validate", "-q", "--sample", &n.to_string(), "--inputs-sample", &m.to_string(), "--bootstrap", "200"])
        .arg("--agent-path")
        .arg(fixture(name))
        .arg("--output-dir")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    let ours = read_json(&out.path().join("validation.json"));
    let meta = ours.get("metadata").unwrap();
    assert_eq!(meta.get("target").unwrap().as_str(), get("target").as_str(), "{name}");
    assert_eq!(meta.get("inputs").unwrap().as_i64(), Some(m), "{name}");
    // The sample, element for element, in order.
    let params: Vec<(String, Vec<usize>)> = named_shapes(get("params"));
    let flat_of = |layer: &str, index: &[usize]| -> (usize, usize) {
        let p = params.iter().position(|(n, _)| n == layer).unwrap_or_else(|| panic!("{name}: {layer}"));
        let flat = index.iter().zip(&params[p].1).fold(0, |acc, (&i, &d)| acc * d + i);
        (p, flat)
    };
    let sample = ours.get("sample").unwrap().as_array().unwrap();
    let elements: Vec<(usize, usize)> = sample
        .iter()
        .map(|s| {
            let index: Vec<usize> =
                s.get("index").unwrap().as_array().unwrap().iter().map(|i| i.as_i64().unwrap() as usize).collect();
            flat_of(s.get("layer_name").unwrap().as_str().unwrap(), &index)
        })
        .collect();
    let want: Vec<(usize, usize)> = get("elements")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = e.as_array().unwrap();
            (e[0].as_i64().unwrap() as usize, e[1].as_i64().unwrap() as usize)
        })
        .collect();
    assert_eq!(elements, want, "{name}: the sample");
    // Damage and flip rate per weight.
    let ref_damage = floats(get("damage"));
    let ref_flips = floats(get("flip_rate"));
    let max_damage = ref_damage.iter().fold(0.0f64, |a, &b| a.max(b));
    let mut flips_differ = 0;
    for (j, s) in sample.iter().enumerate() {
        let d = s.get("damage").unwrap().as_f64().unwrap();
        let tol = DAMAGE_RTOL * max_damage + 1e-9;
        assert!(
            (d - ref_damage[j]).abs() <= tol,
            "{name}: damage of element {j}: {d} vs {} (tol {tol})",
            ref_damage[j]
        );
        let f = s.get("flip_rate").unwrap().as_f64().unwrap();
        if f != ref_flips[j] {
            flips_differ += 1;
            assert!((f - ref_flips[j]).abs() <= 1.0 / m as f64 + 1e-12, "{name}: flip rate of element {j}");
        }
    }
    assert!(flips_differ * 50 <= sample.len(), "{name}: {flips_differ} flip rates differ (near-ties only)");
    // The measures at the sampled weights (snr, ill-conditioned, is checked in tests/targets.rs).
    for (mname, theirs) in get("measures").as_object().unwrap() {
        if mname == "snr" {
            continue;
        }
        let theirs = floats(theirs);
        let got: Vec<f64> =
            sample.iter().map(|s| s.get("measures").unwrap().get(mname).unwrap().as_f64().unwrap()).collect();
        let scale = theirs.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        assert_close_scaled(&format!("{name}: {mname}"), &got, &theirs, 4.0 * scale);
    }
    // Spearman and the top-decile hit: ours on the reference's numbers are scipy's.
    let scipy = get("spearman").as_object().unwrap();
    let hits = get("top_decile_hit").as_object().unwrap();
    let ours_scores = ours.get("measures").unwrap().as_array().unwrap();
    for (mname, rho) in scipy {
        let values = floats(&get("measures").as_object().unwrap()[mname]);
        let mine = saliency::stats::spearman(&values, &ref_damage);
        match rho.as_f64() {
            Some(r) => assert!((mine.unwrap() - r).abs() < 1e-12, "{name}: {mname}: {mine:?} vs scipy {r}"),
            None => assert_eq!(mine, None, "{name}: {mname}: scipy finds no correlation"),
        }
        let hit = saliency::study::validate::top_decile_hit(&values, &ref_damage);
        assert_eq!(hit, hits[mname].as_f64().unwrap(), "{name}: {mname} top-decile hit");
        // ...and on ours, within rounding (near-equal damages can swap ranks).
        let score = ours_scores.iter().find(|s| s.get("measure").unwrap().as_str() == Some(mname)).unwrap();
        if let (Some(r), Some(got)) = (rho.as_f64(), score.get("spearman").unwrap().as_f64()) {
            assert!((got - r).abs() < 0.005, "{name}: {mname}: spearman {got} vs scipy's {r} on PyTorch's numbers");
        }
    }
    // Best predictor first.
    let rhos: Vec<f64> = ours_scores.iter().filter_map(|s| s.get("spearman").unwrap().as_f64()).collect();
    assert!(rhos.windows(2).all(|w| w[0] >= w[1]), "{name}: {rhos:?}");
}

/// Damages are differences of two float32 forward passes (float64 for the PPO reference):
/// compared within 1e-5 of the largest damage (they agree to 2e-7 on this machine).
const DAMAGE_RTOL: f64 = 1e-5;

#[test]
fn damage_and_correlations_match_pytorch_and_scipy_dqn_mlp() {
    check("cartpole");
}

#[test]
fn damage_and_correlations_match_pytorch_and_scipy_cnn() {
    check("cnn");
}

#[test]
fn damage_and_correlations_match_pytorch_and_scipy_ppo() {
    check("ppo_cartpole");
}

/// The batched single-weight damages (one pass per layer's group of weights, the layer's output
/// corrected per weight) against one full forward pass per weight with the changed network
/// (`ablation::apply` and `effects`, the path the ablation's PyTorch comparisons check): every
/// parameter, first, last and spread elements, on Linear and strided Conv layers, a Dict agent
/// with two branches, a critic sharing its extractor with the policy (`value`: the flips are
/// the policy's), QR-DQN, in modes zero and scale.
fn batched_equals_one_pass_per_weight(name: &str, target: Option<&str>, mode: &str) {
    use saliency::ablation::{apply, effects, prepare, single_damages, Change, DamageSums, Mode};
    use saliency::study::model::ModelSpec;
    let spec = ModelSpec {
        agent_path: fixture(name),
        device: "cpu".into(),
        overrides: Default::default(),
        limits: Default::default(),
        batch_size: None,
        target: target.map(|t| saliency::target::Target::parse(t).unwrap()),
    };
    let loaded = spec.load().unwrap();
    let (net, agent) = (&loaded.net, &loaded.agent);
    let path = saliency::pipeline::clean_inputs_path(&fixture(name));
    let mut reader = saliency::pipeline::inputs::InputReader::open(&path, &agent.arch).unwrap();
    let (mut ids, mut values) = (Vec::new(), Vec::new());
    let n = reader.next_batch(16, &mut ids, &mut values).unwrap();
    let batch = prepare(net, &values, n, loaded.target).unwrap();
    let mode = Mode::parse(mode).unwrap();
    let mut elements = Vec::new();
    for (p, w) in net.weights().iter().enumerate() {
        let numel = w.numel();
        for i in [0, numel / 3, numel / 2, 2 * numel / 3 + 1, numel - 1] {
            elements.push((p, i.min(numel - 1)));
        }
    }
    let mut batched = vec![DamageSums::default(); elements.len()];
    assert!(single_damages(net, &batch, &elements, mode, loaded.target, &mut batched, &|| false, &mut |_| {}).unwrap());
    let scale = batch.sig.out.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
    let mut flips_differ = 0;
    for (&(p, i), got) in elements.iter().zip(&batched) {
        let change = Change { per_param: vec![(p, vec![i])] };
        let each =
            effects(net, &batch.x, &batch.sig, &apply(net, &change, mode).unwrap(), loaded.target, false).unwrap();
        let want_drop = each.iter().map(|e| e.target_drop.abs()).sum::<f64>() / n as f64;
        let want_flips = each.iter().filter(|e| e.ablated_action != e.action).count();
        assert_eq!(got.n, n, "{name}: inputs counted");
        let tol = 1e-5 * scale.max(1.0);
        assert!(
            (got.damage() - want_drop).abs() <= tol,
            "{name} {target:?}: ({p}, {i}) damage {} vs {want_drop}",
            got.damage()
        );
        if got.flips != want_flips {
            flips_differ += 1;
            assert!(got.flips.abs_diff(want_flips) <= 1, "{name}: ({p}, {i}) flips {} vs {want_flips}", got.flips);
        }
    }
    assert!(flips_differ * 20 <= elements.len(), "{name}: {flips_differ} flip counts differ (near-ties only)");
}

#[test]
fn batched_single_damages_equal_one_pass_per_weight() {
    for (name, target, mode) in [
        ("cartpole", None, "zero"),
        ("cnn", None, "scale:0.5"),
        ("combined", None, "zero"),
        ("qrdqn", Some("margin"), "zero"),
        ("ppo_cnn", Some("value"), "zero"),
        ("ppo_dict_separate", None, "scale:-1"),
        ("ppo_dict_separate", Some("value"), "zero"),
        ("a2c_acrobot", Some("value"), "zero"),
    ] {
        batched_equals_one_pass_per_weight(name, target, mode);
    }
}
