//! `--feature-names FILE`: labels for the input view's bars. A JSON list of strings (one per
//! value of a single observation), or for Dict observations an object from key to such a list.

use std::collections::HashMap;
use std::path::Path;

use crate::json::Value;
use crate::pipeline::extract::read_small_json;
use crate::pipeline::input_saliency::InputKey;

#[derive(Debug, Clone, PartialEq)]
pub enum FeatureNames {
    /// For the one observation key.
    List(Vec<String>),
    /// Per observation key.
    PerKey(HashMap<String, Vec<String>>),
}

/// Names given for a key that do not fit it (shown as a note; the names are not used).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("feature names for \"{key}\": {names} names for {values} values (not used)")]
pub struct NamesMismatch {
    pub key: String,
    pub names: usize,
    pub values: usize,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let a = v.as_array().ok_or_else(|| format!("{what}: expected a list of names, found {}", v.type_name()))?;
    a.iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{what}[{i}]: expected a name (text), found {}", s.type_name()))
        })
        .collect()
}

impl FeatureNames {
    pub fn read(path: &Path) -> super::Result<FeatureNames> {
        let v = read_small_json(path, "feature-names file")?;
        let shown = path.display().to_string();
        let parsed = match &v {
            Value::Array(_) => strings(&v, &shown).map(FeatureNames::List),
            Value::Object(map) => map
                .iter()
                .map(|(k, list)| strings(list, &format!("{shown}: key \"{k}\"")).map(|l| (k.clone(), l)))
                .collect::<Result<HashMap<_, _>, _>>()
                .map(FeatureNames::PerKey),
            other => Err(format!(
                "{shown}: expected a list of names, or an object from observation key to a list of names, found {}",
                other.type_name()
            )),
        };
        parsed.map_err(super::StudyError::Refused)
    }

    /// The names of one key's values, when given and of the right length (else a note why not).
    pub fn for_key(&self, key: &InputKey, single: bool) -> Result<Option<&[String]>, NamesMismatch> {
        let names = match self {
            FeatureNames::List(l) if single => Some(l),
            FeatureNames::List(_) => None,
            FeatureNames::PerKey(m) => m.get(&key.name),
        };
        match names {
            Some(n) if n.len() != key.len() => {
                Err(NamesMismatch { key: key.name.clone(), names: n.len(), values: key.len() })
            }
            Some(n) => Ok(Some(n.as_slice())),
            None => Ok(None),
        }
    }
}
