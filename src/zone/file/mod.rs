//! Zones in RFC 1035 master-file format: reading them (`load`, entry by
//! entry in `reader` on the tokens of `lexer`, large texts in chunks on
//! every core with `ahead`) and writing them (`write`, the secondary's copy).

mod ahead;
pub mod lexer;
pub mod load;
mod reader;
pub mod write;
