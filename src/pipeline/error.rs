//! What can go wrong in the pipeline's steps. Messages say what, where, expected and found;
//! underlying errors (I/O, JSON text, the model) are kept as sources.

use std::path::PathBuf;

use crate::json::JsonError;
use crate::model::ModelError;
use crate::paths::PathError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Ctrl-C, or Esc in the explorer; no output was left half-written.
    #[error("cancelled; no output file was changed")]
    Cancelled,
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Json(#[from] JsonError),
    /// JSON text that is wrong for the file it is in (`context` says what was being read).
    #[error("{source} ({context})")]
    JsonIn {
        context: String,
        #[source]
        source: JsonError,
    },
    /// One input of `clean_inputs.json` or `weight_gradients.json` (`detail` continues the
    /// sentence: ": expected ...", " has no ...").
    #[error("{file}: input \"{id}\"{detail}")]
    Input { file: String, id: String, detail: String },
    #[error("{} holds no inputs: there is nothing to analyse", .0.display())]
    NoInputs(PathBuf),
    /// A file that is not of the form its step expects.
    #[error("{0}")]
    Format(String),
    /// Over a size limit.
    #[error("{0}")]
    Limit(String),
    /// `action` says what was tried ("open inputs file", "write").
    #[error("cannot {action} {}", path.display())]
    Io {
        action: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("output directory {} exists and is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

pub type Result<T> = std::result::Result<T, PipelineError>;

impl PipelineError {
    pub fn io(action: impl Into<String>, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PipelineError {
        let (action, path) = (action.into(), path.into());
        move |source| PipelineError::Io { action, path, source }
    }

    pub fn json_in(context: impl Into<String>) -> impl FnOnce(JsonError) -> PipelineError {
        let context = context.into();
        move |source| PipelineError::JsonIn { context, source }
    }
}

/// Whether an error (at any depth of its chain) is a cancellation.
pub fn is_cancelled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if matches!(err.downcast_ref::<PipelineError>(), Some(PipelineError::Cancelled)) {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_is_found_through_wrapping_and_text_is_not_repeated() {
        let wrapped = color_eyre::Report::new(PipelineError::Cancelled).wrap_err("running the explorer's job");
        assert!(is_cancelled(wrapped.as_ref()));
        let io = PipelineError::io("open inputs file", "/x/clean_inputs.json")(std::io::Error::from(
            std::io::ErrorKind::NotFound,
        ));
        assert!(!is_cancelled(&io));
        assert_eq!(crate::error_text(&io), "cannot open inputs file /x/clean_inputs.json: entity not found");
        // An error that quotes its source is printed once.
        let json = crate::json::reader::read_value_from(&b"{"[..], "f.json").unwrap_err();
        let e = PipelineError::json_in("in input \"a\"")(json);
        let text = crate::error_text(&e);
        assert_eq!(text.matches("f.json:1:2").count(), 1, "{text}");
    }

    #[test]
    fn limits_are_told_apart_by_kind_not_by_text() {
        use crate::agent::arch::{Arch, Preprocess};
        let arch = Arch::input_only(vec![3], Preprocess::Float);
        let text = br#"{"a": {"input": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]}}"#;
        let mut r =
            crate::pipeline::inputs::InputReader::from_reader(Box::new(&text[..]), "in.json".into(), &arch).unwrap();
        let err = r.next_batch(8, &mut Vec::new(), &mut Vec::new()).unwrap_err();
        match err {
            PipelineError::Input { id, detail, .. } => {
                assert_eq!(id, "a");
                assert!(detail.contains("expected 3 values, found more than 16"), "{detail}");
            }
            other => panic!("expected an input error, got {other:?}"),
        }
    }
}
