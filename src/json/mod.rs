//! JSON as Python's `json` module reads and writes it.

pub mod pyfloat;
pub mod reader;
pub mod value;
pub mod writer;

pub use reader::{ErrorKind, JsonError, JsonReader, Kind};
pub use value::{Map, Value};
pub use writer::PyJsonWriter;
