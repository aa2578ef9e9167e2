//! What can go wrong reading an agent. Messages say what, where, expected and found; the
//! underlying error (I/O, zip, JSON, pickle) is kept as the source.

use std::path::PathBuf;

use super::pickle::PickleError;
use crate::json::JsonError;
use crate::paths::PathError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("agent path {} is neither a file nor a directory", .0.display())]
    NotFileOrDir(PathBuf),
    #[error("no agent in {}: expected agent.zip, model.zip, dqn.zip or another *.zip file", .0.display())]
    NoZip(PathBuf),
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A zip archive, or a member of one, that the zip reader refuses.
    #[error("{what}{context}")]
    Zip {
        what: String,
        context: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{what}: member '{member}' is corrupt or truncated")]
    Truncated {
        what: String,
        member: String,
        #[source]
        source: std::io::Error,
    },
    /// Over a size or count limit (the message names the limit and how to raise it).
    #[error("{0}")]
    Limit(String),
    /// Not the file it should be, or damaged (the message says what was expected and found).
    #[error("{0}")]
    Malformed(String),
    #[error("{what}")]
    Pickle {
        what: String,
        #[source]
        source: PickleError,
    },
    #[error(transparent)]
    Json(#[from] JsonError),
    /// `data` holds settings saliency cannot use.
    #[error("{0}")]
    Data(String),
    /// The parameters do not make a network saliency knows.
    #[error("{}: {source}", path.display())]
    Arch {
        path: PathBuf,
        #[source]
        source: super::arch::ArchError,
    },
}

pub type Result<T> = std::result::Result<T, AgentError>;
