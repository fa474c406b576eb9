//! The inputs archive of the parity examples (python/tests/test_rust_nn*.py write it):
//! named arrays in an `.npz`, looked up by name or by prefix.

use rmx_core::Array;
use rmx_nn::Params;

pub struct Inputs(Vec<(String, Array)>);

impl Inputs {
    pub fn load(path: &str) -> Result<Inputs, Box<dyn std::error::Error>> {
        match rmx_io::load(path)? {
            rmx_io::Loaded::Arrays(a) => Ok(Inputs(a)),
            rmx_io::Loaded::Array(_) => Err("inputs must be an .npz archive".into()),
        }
    }

    /// The array named `name`.
    pub fn get(&self, name: &str) -> Result<Array, String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .ok_or_else(|| format!("inputs have no {name:?}"))
    }

    /// The arrays named `PREFIX.NAME`, by `NAME` (such as one step's gradients).
    #[allow(dead_code)]
    pub fn with_prefix(&self, prefix: &str) -> Params {
        let prefix = format!("{prefix}.");
        self.0
            .iter()
            .filter_map(|(n, a)| Some((n.strip_prefix(&prefix)?.to_string(), a.clone())))
            .collect()
    }
}
